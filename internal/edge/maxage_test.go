package edge

import (
	"context"
	"testing"
	"time"

	"github.com/edgeproxy/edge/internal/signer"
)

// slowSigner is a signing that takes d on the server's clock (an STS or
// IMDS credential fetch, a slow KMS): the clock moves while it signs.
type slowSigner struct {
	signer.Signer
	clk *clock
	d   time.Duration
}

func (s slowSigner) Presign(ctx context.Context, r signer.Request) (signer.Presigned, error) {
	p, err := s.Signer.Presign(ctx, r)
	s.clk.Add(s.d)
	return p, err
}

// TestMaxAgeAfterSlowSigning: a miss whose signing took 12s. The
// 302's max-age must not outlive the URL counted from when it is sent.
func TestMaxAgeAfterSlowSigning(t *testing.T) {
	cfg := baseConfig(t)
	cfg.Sources[0].URLTTL = 20 * time.Second
	cfg.Sources[0].SigningWindow = 10 * time.Second
	e := newEnv(t, cfg)
	src := e.srv.source("customer-a")
	src.signer = slowSigner{src.signer, e.clk, 12 * time.Second}
	tok := tokenAll(t)
	w := e.get("/v1/s/customer-a/cats/1.jpg?token=" + tok)
	_, maxAge := wantRedirect(t, w, e.clk.Now()) // max-age counts from when the URL is handed out
	t.Logf("sent at +%s, max-age=%d, URL expires at %s", e.clk.Now().Sub(t0), maxAge, urlExpiry(t, w.Header().Get("Location")).Sub(t0))
}
