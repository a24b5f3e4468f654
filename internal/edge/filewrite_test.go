package edge_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/edgeproxy/edge/internal/auth"
	"github.com/edgeproxy/edge/internal/edge"
)

// TestFileSlowClientOutlivesWriteTimeout: a file answer to a client that
// reads steadily but slowly takes longer than server.write_timeout and
// still arrives whole, because the deadline moves with every chunk (a
// stalled client would still be cut after write_timeout).
func TestFileSlowClientOutlivesWriteTimeout(t *testing.T) {
	root := t.TempDir()
	const size = 24 << 20
	if err := os.WriteFile(filepath.Join(root, "big.bin"), make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := edge.ParseConfig([]byte(fmt.Sprintf(`
listen: "127.0.0.1:0"
server: {write_timeout: 2s, shutdown_timeout: 2s}
auth:
  keys: [{alg: HS256, secret: "0123456789abcdef0123456789abcdef"}]
sources:
  - {name: local, provider: file, root: %q, mode: stream}
`, root)), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	srv, err := edge.New(context.Background(), cfg, edge.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, ln) }()
	defer func() { cancel(); <-done }()
	tok, err := auth.Mint(cfg.Auth, auth.MintOptions{Subject: "s", Grants: []auth.Grant{{Source: "local"}}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + ln.Addr().String() + "/v1/s/local/big.bin?token=" + tok)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// About 5 MiB/s: 24 MiB take ~5 s, more than twice the write timeout.
	start := time.Now()
	buf := make([]byte, 256<<10)
	var got int
	for {
		n, err := io.ReadFull(resp.Body, buf)
		got += n
		if err == io.EOF || err == io.ErrUnexpectedEOF && got == size {
			break
		}
		if err != nil {
			t.Fatalf("after %d bytes and %v: %v (cut by the write timeout?)", got, time.Since(start), err)
		}
		time.Sleep(50 * time.Millisecond) // a slow reader, the point of the test
	}
	if got != size {
		t.Fatalf("got %d bytes, want %d", got, size)
	}
	t.Logf("%d MiB in %v with write_timeout 2s", size>>20, time.Since(start))
}
