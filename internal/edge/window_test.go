package edge

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgeproxy/edge/internal/signer"
)

// R6 (sanity): the shared SigV4's kept X-Amz-Date never leaks into a URL
// of another instant: many goroutines signing repeated and alternating
// instants around a day boundary, against a fresh signer each time.
func TestSigV4DateCacheConcurrent(t *testing.T) {
	cfg := signer.SigV4Config{Scheme: "https", Host: "b.s3.eu-west-1.amazonaws.com", Path: "/", Region: "eu-west-1"}
	shared := signer.NewSigV4(cfg)
	base := time.Date(2026, 1, 31, 23, 59, 58, 0, time.UTC)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 7))
			for i := range 3000 {
				at := base.Add(time.Duration(r.IntN(4))*time.Second + time.Duration(r.IntN(1000))*time.Millisecond)
				req := signer.SigV4Request{Method: "GET", Key: "k" + strconv.Itoa(i%5), At: at, Expires: 3600,
					AccessKeyID: "AKID", SecretAccessKey: "s" + strconv.Itoa(i%2), SessionToken: "tok" + strconv.Itoa(i%3)}
				got := shared.Presign(&req)
				want := signer.NewSigV4(cfg).Presign(&req)
				if got != want {
					t.Errorf("at %v:\n got %s\nwant %s", at, got, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// blockingSigner is a signer whose signing waits (a credential refresh)
// while the clock moves past the window it signs for.
type blockingSigner struct {
	signer.Signer
	during func()
}

func (b blockingSigner) Presign(ctx context.Context, r signer.Request) (signer.Presigned, error) {
	p, err := b.Signer.Presign(ctx, r)
	b.during()
	return p, err
}

// R1 at the handler: a signing that straddles the window boundary is
// answered with the old window's URL after its ServeUntil.
func TestRedirectPastServeUntil(t *testing.T) {
	e := newEnv(t, baseConfig(t))
	src := e.srv.sources().byName["customer-a"]
	start := t0.Truncate(src.window).Add(src.window - time.Second) // 1s before the boundary
	e.clk.Set(start)
	var until time.Time
	src.signer = blockingSigner{Signer: src.signer, during: func() { e.clk.Add(3 * time.Second) }}
	tok := signHS(t, claims(grant("customer-a", "")))
	rec := e.do("GET", "/v1/s/customer-a/a.jpg?token="+tok, nil)
	if rec.Code != http.StatusFound {
		t.Fatalf("status %d", rec.Code)
	}
	until = start.Truncate(src.window).Add(src.window)
	loc := rec.Header().Get("Location")
	old := "X-Amz-Date=" + start.Truncate(src.window).UTC().Format("20060102T150405Z")
	if now := e.clk.Now(); !now.Before(until) && strings.Contains(loc, old) {
		t.Errorf("at %v answered %s (Cache-Control %q), a URL of the window that ended at %v",
			now, loc, rec.Header().Get("Cache-Control"), until)
	}
}
