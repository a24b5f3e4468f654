package edge

import (
	"bytes"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgeproxy/edge/internal/auth"
	"github.com/edgeproxy/edge/internal/connections"
	"github.com/edgeproxy/edge/internal/testenv"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestConnectionInFlightAndRetire: a stream in flight when its connection
// changes finishes with the version it started with (every byte from the
// old bucket); the change drops the old version's cached URLs; a delete
// drops the source's edge_source_up series and, after the grace, its
// stream transport.
func TestConnectionInFlightAndRetire(t *testing.T) {
	old := retireGrace
	retireGrace = 200 * time.Millisecond
	t.Cleanup(func() { retireGrace = old })
	v := testenv.StartVersity(t)
	v.CreateBucket(t, "inflight-a")
	v.CreateBucket(t, "inflight-b")
	big := bytes.Repeat([]byte("A"), 8<<20)
	v.Put(t, "inflight-a", "big.bin", big)
	v.Put(t, "inflight-b", "big.bin", bytes.Repeat([]byte("B"), 8<<20))
	dir := t.TempDir()
	cfg := &Config{
		Auth:        auth.Config{Issuer: testIssuer, Audience: testAudience, Keys: []auth.KeyConfig{{ID: "k1", Alg: "HS256", Secret: testSecret}}},
		Connections: connections.Config{Dir: dir},
	}
	l := startLive(t, cfg, nil, v.SecretKey)
	l.tok = signHS(t, claimsAt(time.Now(), grant("mv", "")))
	file := filepath.Join(dir, "mv.yaml")
	writeFile(t, file, vSpec(v, "inflight-a", "", "stream", v.AccessKey, v.SecretKey))
	eventually(t, "create", func() bool { c, _, _, _ := l.get("/v1/s/mv/big.bin"); return c == 200 })
	s := l.r.Server()
	first := s.source("mv")
	cached := s.urls.Len()

	// A stream in flight: read its first bytes, change the bucket, read the rest.
	req, _ := http.NewRequest(http.MethodGet, l.base+"/v1/s/mv/big.bin", nil)
	req.Header.Set("Authorization", "Bearer "+l.tok)
	resp, err := l.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 1024)
	if _, err := io.ReadFull(resp.Body, head); err != nil {
		t.Fatal(err)
	}
	writeFile(t, file, vSpec(v, "inflight-b", "", "stream", v.AccessKey, v.SecretKey))
	eventually(t, "change", func() bool {
		_, _, b, _ := l.get("/v1/s/mv/big.bin")
		return strings.HasPrefix(b, "BBBB")
	})
	rest, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("the stream in flight broke: %v", err)
	}
	if got := append(head, rest...); !bytes.Equal(got, big) {
		t.Errorf("the stream in flight did not finish with its version (%d bytes, first B at %d)", len(got), bytes.IndexByte(got, 'B'))
	}
	if s.source("mv") == first {
		t.Fatal("the change kept the old *Source")
	}
	if _, _, ok := s.urls.Cached(urlKey{src: first, key: "big.bin"}, time.Now()); ok {
		t.Error("the old version's URL is still cached")
	}
	t.Logf("URL cache: %d entries before the change, %d after", cached, s.urls.Len())

	// Delete: the series and, after the grace, the transport go.
	if n := testutil.CollectAndCount(s.metrics.sourceUp); n != 1 {
		t.Errorf("edge_source_up series before delete: %d", n)
	}
	removeFile(t, file)
	eventually(t, "delete", func() bool { c, _, _, _ := l.get("/v1/s/mv/big.bin"); return c == 404 })
	if n := testutil.CollectAndCount(s.metrics.sourceUp); n != 0 {
		t.Errorf("edge_source_up series after delete: %d", n)
	}
	if s.urls.Len() != 0 {
		t.Errorf("URL cache after delete: %d entries", s.urls.Len())
	}
	eventually(t, "transport released", func() bool { return s.streams.Transport("mv") == nil })
}
