// Command edge is the presigning edge proxy: it authenticates annotator
// tokens and answers with presigned storage URLs or the object's bytes.
//
//	edge serve -config FILE [-listen ADDR]
//	edge demo [-listen ADDR]
//	edge token -config FILE -sub ID -grant SOURCE:PREFIX [-grant ...] [-ttl 1h]
//	edge presign -config FILE REF
//	edge check -config FILE [-source NAME] [-json]
//	edge policy -config FILE [-json] SOURCE
//	edge sync -config FILE [-since OLD.jsonl] [-check [-recheck]] [-o FILE] SOURCE
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/edgeproxy/edge/internal/auth"
	"github.com/edgeproxy/edge/internal/demo"
	"github.com/edgeproxy/edge/internal/edge"
	"github.com/edgeproxy/edge/internal/limit"
	"go.uber.org/zap"
)

const usage = `edge: a presigning edge proxy for private buckets

usage:
  edge serve   -config FILE [-listen ADDR]        serve (EDGE_CONFIG may name the file)
  edge demo    [-listen ADDR]                     serve bundled sample images; open /demo
  edge token   -config FILE -sub ID -grant SOURCE:PREFIX [-grant ...] [-ttl 1h]
  edge presign -config FILE REF                   REF is SOURCE/KEY or a storage URL
  edge check   -config FILE [-source NAME] [-json] validate the config, probe every source step by step; exit 1 on problems
  edge policy  -config FILE [-json] SOURCE         what the customer pastes for SOURCE: policies, CORS, roles
  edge connections schema                         print the SQL (table, trigger) for connections in PostgreSQL
  edge sync    -config FILE [-since OLD.jsonl] [-check [-recheck]] [-o FILE] SOURCE   list the source into a JSON-lines manifest
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// After the first signal the default handling is back: a second
	// SIGTERM or SIGINT ends a shutdown that takes too long at once.
	context.AfterFunc(ctx, stop)
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], stderr)
	case "demo":
		err = runDemo(ctx, args[1:], stdout, stderr)
	case "token":
		err = token(args[1:], stdout, stderr)
	case "presign":
		err = presign(ctx, args[1:], stdout, stderr)
	case "check":
		err = check(ctx, args[1:], stdout, stderr)
	case "policy":
		err = policy(ctx, args[1:], stdout, stderr)
	case "connections":
		err = connectionsCmd(args[1:], stdout, stderr)
	case "sync":
		err = syncCmd(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "edge: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "edge %s: %v\n", args[0], err)
			return 2
		}
		fmt.Fprintf(stderr, "edge %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

type usageError struct{ error }

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("edge "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func loadConfig(path string) (*edge.Config, error) {
	if path == "" {
		path = os.Getenv("EDGE_CONFIG")
	}
	if path == "" {
		return nil, usageError{errors.New("-config FILE (or EDGE_CONFIG) is required")}
	}
	return edge.LoadConfig(path)
}

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	cfgPath := fs.String("config", "", "config file (default $EDGE_CONFIG)")
	listen := fs.String("listen", "", "listen address, overrides the config's listen")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	path := *cfgPath
	if path == "" {
		path = os.Getenv("EDGE_CONFIG")
	}
	cfg, err := loadConfig(path)
	if err != nil {
		return err
	}
	if *listen != "" {
		cfg.Listen = *listen
	}
	return runServer(ctx, cfg, edge.Options{}, stderr, path, func(ln net.Listener, log *zap.Logger) {
		log.Info("listening", zap.String("addr", ln.Addr().String()), zap.Int("sources", len(cfg.Sources)))
	})
}

// runServer builds the logger and the server, listens, calls started,
// and serves until ctx ends (SIGTERM, SIGINT); serve and demo share it.
// With a config path, SIGHUP reloads that file (a bad one leaves the
// running config in force).
func runServer(ctx context.Context, cfg *edge.Config, opts edge.Options, stderr io.Writer, cfgPath string, started func(net.Listener, *zap.Logger)) error {
	log, err := edge.NewLogger(cfg.Log, stderr)
	if err != nil {
		return err
	}
	defer log.Sync()
	tuneGC(log, os.Getenv, memlimit.FromCgroup)
	opts.Logger = log
	r, err := edge.NewRunner(ctx, cfg, opts, edge.RunnerOptions{})
	if err != nil {
		return err
	}
	defer func() { r.Server().Close() }()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	if cfgPath != "" {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-hup:
					log.Info("SIGHUP: reloading the config", zap.String("path", cfgPath))
					_ = r.ReloadFile(ctx, cfgPath) // logged
				}
			}
		}()
	}
	started(ln, log)
	// Run returns once the requests in flight have finished and the audit
	// trail has written what they queued (SIGTERM, SIGINT).
	return r.Run(ctx, ln)
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "listen address")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	cfg, err := demo.Config(*listen)
	if err != nil {
		return err
	}
	const ttl = 12 * time.Hour
	tok, err := demo.Token(cfg, ttl)
	if err != nil {
		return err
	}
	opts := demo.Options(tok, ttl, *listen)
	return runServer(ctx, cfg, opts, stderr, "", func(ln net.Listener, _ *zap.Logger) {
		base := "http://" + ln.Addr().String()
		fmt.Fprintf(stdout, "edge demo listening on %s\n\n  open:   %s/demo\n  token:  %s\n  try:    curl -i '%s/v1/s/%s/gradient.png?token=%s'\n\n(access logs follow on stderr; Ctrl-C stops)\n",
			base, base, tok, base, demo.Redirect, tok)
	})
}

type grantList []auth.Grant

func (g *grantList) String() string { return fmt.Sprint(*g) }
func (g *grantList) Set(v string) error {
	src, prefix, ok := strings.Cut(v, ":")
	if !ok || src == "" {
		return errors.New("want SOURCE:PREFIX (PREFIX may be empty)")
	}
	*g = append(*g, auth.Grant{Source: src, Prefix: prefix})
	return nil
}

func token(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("token", stderr)
	cfgPath := fs.String("config", "", "config file (default $EDGE_CONFIG)")
	sub := fs.String("sub", "", "subject (the annotator's id)")
	ttl := fs.Duration("ttl", time.Hour, "lifetime")
	var grants grantList
	fs.Var(&grants, "grant", "SOURCE:PREFIX, repeatable")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if *sub == "" || len(grants) == 0 {
		return usageError{errors.New("-sub and at least one -grant are required")}
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	tok, err := auth.Mint(cfg.Auth, auth.MintOptions{Subject: *sub, Grants: grants, TTL: *ttl})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

func presign(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("presign", stderr)
	cfgPath := fs.String("config", "", "config file (default $EDGE_CONFIG)")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() != 1 {
		return usageError{errors.New("exactly one REF (SOURCE/KEY or a storage URL) is required")}
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	// presign answers no request: no audit trail to open, no Redis to
	// dial.
	cfg.Audit.File, cfg.Audit.Webhook = "", ""
	cfg.Limits = limit.Config{}
	srv, err := edge.New(ctx, cfg, edge.Options{Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer srv.Close()
	u, _, err := srv.PresignRef(ctx, fs.Arg(0))
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, u)
	return nil
}
