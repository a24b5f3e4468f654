package audit_test

import (
	"context"
	"net/http/httptest"
	"time"

	"github.com/edgeproxy/edge/internal/audit"
	"github.com/edgeproxy/edge/internal/clientip"
)

// Example shows the wiring the HTTP layer does: one Auditor built at
// start, one Enqueue per object request when its answer is known, Close
// after the server has shut down.
func Example() {
	cfg := audit.Config{File: "-"} // from the config file's audit section
	cfg.Defaults()
	a, err := audit.New(cfg, audit.Options{}) // Metrics, Logger from the composition root
	if err != nil {
		panic(err)
	}
	proxies, _ := clientip.New("server.trusted_proxies", []string{"10.0.0.0/8"})

	r := httptest.NewRequest("GET", "/v1/s/customer-a/cats/1.jpg?token=SECRET", nil)
	r.RemoteAddr = "10.0.0.1:5555"
	r.Header.Set("X-Forwarded-For", "198.51.100.4")
	// At the end of the request (the access log's place): a value, on the
	// stack; Enqueue copies the key out of the request line.
	a.Enqueue(&audit.Record{
		Time:      time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC),
		RequestID: "f3a9",
		Subject:   "annotator-17",
		Issuer:    "https://app.example.com",
		TokenID:   "jti-42",
		Source:    "customer-a",
		Key:       r.URL.Path[len("/v1/s/customer-a/"):],
		Mode:      "redirect",
		Method:    r.Method,
		Status:    302,
		ClientIP:  proxies.FromRequest(r),
	})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = a.Close(ctx) // on SIGTERM, after http.Server.Shutdown
	// Output:
	// {"time":"2026-12-01T10:00:00.000Z","request_id":"f3a9","subject":"annotator-17","issuer":"https://app.example.com","token_id":"jti-42","source":"customer-a","key":"cats/1.jpg","mode":"redirect","method":"GET","status":302,"bytes":0,"client_ip":"198.51.100.4"}
}
