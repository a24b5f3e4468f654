package connections

import (
	"context"
	"errors"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
)

// pgStore follows a PostgreSQL table with LISTEN/NOTIFY: it listens first,
// then reads the whole table, so a change committed during the read is
// notified and re-read after it. A notification names the row to re-read
// (or is empty: re-read everything); a burst of them is collected for a
// moment and read in one query. On any error the connection is dropped,
// the store is marked down (the last rows read stay in force), and it
// reconnects with backoff, reading everything again.
type pgStore struct {
	w        *Watcher
	cfg      PostgresConfig
	conn     *pgx.ConnConfig
	table    string // quoted
	rescanCh chan struct{}
	redact   func(string) string
}

// Tuning of the notification loop.
const (
	pgGather      = 2 * time.Millisecond // collect a burst this long (more pile up while a read runs)
	pgMaxGather   = 256                  // past this many names, read the whole table
	pgPingEvery   = 30 * time.Second     // detect a silently lost connection
	pgReadTimeout = 60 * time.Second
)

func newPGStore(w *Watcher, cfg PostgresConfig) (*pgStore, error) {
	cc, err := pgx.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, errors.New("connections.postgres.dsn: is not a valid PostgreSQL connection string")
	}
	if cc.ConnectTimeout == 0 || cc.ConnectTimeout > 10*time.Second {
		cc.ConnectTimeout = 10 * time.Second
	}
	if cc.RuntimeParams == nil {
		cc.RuntimeParams = map[string]string{}
	}
	if _, ok := cc.RuntimeParams["application_name"]; !ok {
		cc.RuntimeParams["application_name"] = "edge"
	}
	return &pgStore{
		w: w, cfg: cfg, conn: cc,
		table:    tableIdent(cfg.Table).Sanitize(),
		rescanCh: make(chan struct{}, 1),
		redact:   newRedactor(cfg.DSN, cc.Password),
	}, nil
}

func (p *pgStore) origin() string { return OriginPostgres }

func (p *pgStore) rescan() {
	select {
	case p.rescanCh <- struct{}{}:
	default:
	}
}

func (p *pgStore) run(ctx context.Context, out chan<- storeUpdate) {
	log := p.w.log.With(zap.String("store", OriginPostgres))
	bo := backoff{min: p.w.opts.MinBackoff, max: p.w.opts.MaxBackoff}
	rows := map[string]Entry{} // the last good state, kept while the database is away
	for ctx.Err() == nil {
		err := p.session(ctx, out, rows, &bo, log)
		if ctx.Err() != nil {
			return
		}
		p.w.m.up.WithLabelValues(OriginPostgres).Set(0)
		delay := bo.next()
		log.Warn("connection store lost; the last connections read stay in force",
			zap.String("error", p.redact(err.Error())), zap.Duration("retry_in", delay))
		if !sleep(ctx, delay) {
			return
		}
	}
}

// session connects, listens, reads everything and follows notifications
// until an error.
func (p *pgStore) session(ctx context.Context, out chan<- storeUpdate, rows map[string]Entry, bo *backoff, log *zap.Logger) error {
	conn, err := pgx.ConnectConfig(ctx, p.conn)
	if err != nil {
		p.w.m.result(OriginPostgres, err)
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn.Close(cctx)
		cancel()
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{p.cfg.Channel}.Sanitize()); err != nil {
		p.w.m.result(OriginPostgres, err)
		return err
	}
	if err := p.readAll(ctx, conn, rows); err != nil {
		return err
	}
	bo.reset()
	p.w.m.up.WithLabelValues(OriginPostgres).Set(1)
	log.Info("connection store read; listening", zap.Int("entries", len(rows)))
	p.publish(ctx, out, rows)

	nextResync := time.Now().Add(p.w.opts.Config.Resync)
	for {
		wake := nextResync
		if ping := time.Now().Add(pgPingEvery); ping.Before(wake) {
			wake = ping
		}
		wctx, cancel := context.WithDeadline(ctx, wake)
		rescanned := make(chan struct{})
		go func() {
			select {
			case <-p.rescanCh:
				close(rescanned)
				cancel()
			case <-wctx.Done():
			}
		}()
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		select {
		case <-rescanned:
			if err := p.readAll(ctx, conn, rows); err != nil {
				return err
			}
			p.publish(ctx, out, rows)
			nextResync = time.Now().Add(p.w.opts.Config.Resync)
			continue
		default:
		}
		if err != nil {
			if !errors.Is(err, context.DeadlineExceeded) || conn.IsClosed() {
				return err
			}
			if !time.Now().Before(nextResync) {
				if err := p.readAll(ctx, conn, rows); err != nil {
					return err
				}
				p.publish(ctx, out, rows)
				nextResync = time.Now().Add(p.w.opts.Config.Resync)
				continue
			}
			pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
			err = conn.Ping(pctx)
			pcancel()
			if err != nil {
				return err
			}
			continue
		}
		// Gather the burst this notification starts.
		names := map[string]bool{}
		all := false
		add := func(payload string) {
			if name, a := ParseNotification(payload); a {
				all = true
			} else {
				names[name] = true
			}
		}
		add(n.Payload)
		for !all && len(names) < pgMaxGather {
			gctx, gcancel := context.WithTimeout(ctx, pgGather)
			n, err := conn.WaitForNotification(gctx)
			gcancel()
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if !errors.Is(err, context.DeadlineExceeded) || conn.IsClosed() {
					return err
				}
				break
			}
			add(n.Payload)
		}
		if all || len(names) >= pgMaxGather {
			err = p.readAll(ctx, conn, rows)
		} else {
			err = p.readNames(ctx, conn, rows, names)
		}
		if err != nil {
			return err
		}
		p.publish(ctx, out, rows)
	}
}

func (p *pgStore) publish(ctx context.Context, out chan<- storeUpdate, rows map[string]Entry) {
	entries := make([]Entry, 0, len(rows))
	for _, e := range rows {
		entries = append(entries, e)
	}
	p.w.m.entries.WithLabelValues(OriginPostgres).Set(float64(len(entries)))
	p.w.publish(ctx, out, OriginPostgres, entries)
}

// readAll replaces rows with the whole table.
func (p *pgStore) readAll(ctx context.Context, conn *pgx.Conn, rows map[string]Entry) error {
	rctx, cancel := context.WithTimeout(ctx, pgReadTimeout)
	defer cancel()
	fresh := make(map[string]Entry, len(rows))
	err := p.query(rctx, conn, "SELECT "+pgColumns+" FROM "+p.table, nil, fresh)
	p.w.m.result(OriginPostgres, err)
	if err != nil {
		return err
	}
	clear(rows)
	for k, v := range fresh {
		rows[k] = v
	}
	return nil
}

// readNames re-reads the named rows; a name with no row is removed.
func (p *pgStore) readNames(ctx context.Context, conn *pgx.Conn, rows map[string]Entry, names map[string]bool) error {
	rctx, cancel := context.WithTimeout(ctx, pgReadTimeout)
	defer cancel()
	list := make([]string, 0, len(names))
	for n := range names {
		list = append(list, n)
	}
	fresh := make(map[string]Entry, len(list))
	err := p.query(rctx, conn, "SELECT "+pgColumns+" FROM "+p.table+" WHERE name = ANY($1)", []any{list}, fresh)
	p.w.m.result(OriginPostgres, err)
	if err != nil {
		return err
	}
	for _, n := range list {
		if e, ok := fresh[n]; ok {
			rows[n] = e
		} else {
			delete(rows, n)
		}
	}
	return nil
}

func (p *pgStore) query(ctx context.Context, conn *pgx.Conn, sql string, args []any, into map[string]Entry) error {
	rs, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rs.Close()
	for rs.Next() {
		var name, spec, typ, nameTyp, specName *string
		if err := rs.Scan(&name, &spec, &typ, &nameTyp, &specName); err != nil {
			return err
		}
		if name == nil {
			continue // a primary key is never NULL; a view's might be
		}
		into[*name] = pgEntry(*name, spec, typ, nameTyp, specName)
	}
	return rs.Err()
}

// pgColumns lets the database check the envelope it has already parsed
// (jsonb): the type of the spec and of its name.
const pgColumns = "name, spec::text, jsonb_typeof(spec), jsonb_typeof(spec->'name'), spec->>'name'"

// pgEntry builds a row's entry from the columns of pgColumns, with the
// checks newEntry makes on a file.
func pgEntry(name string, spec, typ, nameTyp, specName *string) Entry {
	var data []byte
	if spec != nil {
		data = []byte(*spec)
	}
	e := Entry{Name: name, Origin: OriginPostgres, Data: data}
	switch {
	case !ValidName(name):
		e.Problem = problem(ProblemBadName, "the name must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit")
	case spec == nil:
		e.Problem = problem(ProblemNotObject, "the spec is NULL")
	case len(data) > MaxSpecBytes:
		e.Problem = problem(ProblemTooLarge, "the spec is larger than %d bytes", MaxSpecBytes)
	case typ == nil || *typ != "object":
		e.Problem = problem(ProblemNotObject, "the spec must be a JSON object")
	case nameTyp != nil && (*nameTyp != "string" || specName == nil || *specName != name):
		e.Problem = problem(ProblemNameMismatch, "the spec's name must be a string equal to the connection's name (the file's base name or the row's name), or be left out")
	}
	e.Version = version(data, e.Problem)
	return e
}

// newRedactor returns a function that removes the DSN and its password
// from a message (pgx errors may quote parts of the connection string).
func newRedactor(dsn, password string) func(string) string {
	var secrets []string
	add := func(s string) {
		if len(s) >= 1 {
			secrets = append(secrets, s)
		}
	}
	add(dsn)
	add(password)
	add(url.QueryEscape(password))
	add(url.PathEscape(password))
	return func(msg string) string {
		for _, s := range secrets {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
		msg = kvPassword.ReplaceAllString(msg, "password=[redacted]")
		msg = urlPassword.ReplaceAllString(msg, "://$1:[redacted]@")
		return msg
	}
}

var (
	kvPassword  = regexp.MustCompile(`(?i)password\s*=\s*('[^']*'|\S+)`)
	urlPassword = regexp.MustCompile(`://([^:/@\s]*):[^@\s]*@`)
)

// RedactDSN removes the password of dsn from msg, for callers that log
// their own database errors.
func RedactDSN(dsn, msg string) string {
	pw := ""
	if cc, err := pgx.ParseConfig(dsn); err == nil {
		pw = cc.Password
	}
	return newRedactor(dsn, pw)(msg)
}
