package connections

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/edgeproxy/edge/internal/testenv"
	"github.com/jackc/pgx/v5"
)

// BenchmarkNotifyToSnapshot measures the time from a committed row (the
// UPDATE's autocommit returned) to the snapshot holding it delivered, over
// 20 changes per iteration; it reports the median and the worst.
//
//	go test -run '^$' -bench NotifyToSnapshot -benchtime 1x ./internal/connections/
func BenchmarkNotifyToSnapshot(b *testing.B) {
	pg := testenv.StartPostgres(b)
	sql, _ := SchemaSQL(DefaultTable, DefaultChannel, DefaultReaderRole)
	pg.Exec(b, sql)
	type delivery struct {
		at   time.Time
		snap []Entry
	}
	got := make(chan delivery, 64)
	cfg := Config{Postgres: PostgresConfig{DSN: pg.DSN}}
	cfg.Defaults()
	w, err := New(Options{Config: cfg, OnChange: func(es []Entry) { got <- delivery{time.Now(), es} }})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	<-got // the first (empty) snapshot
	conn := pg.Connect(b)
	const samples = 20
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := 0; j < samples; j++ {
			want := fmt.Sprintf(`"/v%d-%d"`, i, j)
			if _, err := conn.Exec(ctx, `INSERT INTO edge_connections (name, spec) VALUES ('lat', jsonb_build_object('root', $1::text))
				ON CONFLICT (name) DO UPDATE SET spec = EXCLUDED.spec`, strings.Trim(want, `"`)); err != nil {
				b.Fatal(err)
			}
			committed := time.Now()
			for {
				select {
				case d := <-got:
					if e, ok := find(d.snap, OriginPostgres, "lat"); ok && strings.Contains(string(e.Data), want) {
						lat = append(lat, d.at.Sub(committed))
						goto next
					}
				case <-time.After(5 * time.Second):
					b.Fatalf("change %d not delivered within 5 s", j)
				}
			}
		next:
		}
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "median_ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max_ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkLoad10000Rows measures a watcher's start against a table of
// 10,000 connections: the time until Ready (connect, LISTEN, read, envelope
// checks, the first snapshot delivered) and the heap it keeps.
//
//	go test -run '^$' -bench Load10000Rows -benchtime 3x ./internal/connections/
func BenchmarkLoad10000Rows(b *testing.B) {
	pg := testenv.StartPostgres(b)
	sql, _ := SchemaSQL(DefaultTable, DefaultChannel, DefaultReaderRole)
	pg.Exec(b, sql)
	pg.Exec(b, `INSERT INTO edge_connections (name, spec)
		SELECT 'tenant-' || i, jsonb_build_object(
			'provider', 's3', 'bucket', 'bucket-' || i, 'region', 'eu-west-1', 'prefix', 'datasets/' || i || '/',
			'mode', 'redirect', 'url_ttl', '1h',
			'credentials', jsonb_build_object('type', 'assume_role', 'role_arn', 'arn:aws:iam::123456789012:role/edge-read-' || i, 'external_id', '${EXTERNAL_ID_' || i || '}'))
		FROM generate_series(1, 10000) i`)
	var conn *pgx.Conn = pg.Connect(b)
	var size int
	conn.QueryRow(context.Background(), "SELECT sum(length(spec::text)) FROM edge_connections").Scan(&size)
	b.Logf("10,000 rows, %d bytes of spec JSON", size)
	cfg := Config{Postgres: PostgresConfig{DSN: pg.DSN}}
	cfg.Defaults()
	var total time.Duration
	var heap uint64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		ready := make(chan []Entry, 1)
		start := time.Now()
		w, err := New(Options{Config: cfg, OnChange: func(es []Entry) {
			select {
			case ready <- es:
			default:
			}
		}})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { w.Run(ctx); close(done) }()
		snap := <-ready
		total += time.Since(start)
		if len(snap) != 10000 {
			b.Fatalf("%d entries, want 10000", len(snap))
		}
		runtime.GC()
		runtime.ReadMemStats(&m1)
		heap += m1.HeapAlloc - m0.HeapAlloc
		runtime.KeepAlive(snap)
		cancel()
		<-done
	}
	b.StopTimer()
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms_to_ready")
	b.ReportMetric(float64(heap)/float64(b.N)/(1<<20), "MiB_kept")
	b.ReportMetric(0, "ns/op")
}
