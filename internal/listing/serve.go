package listing

import (
	"context"
	"errors"
	"net/http"

	"github.com/edgeproxy/edge/internal/httperr"
	"github.com/edgeproxy/edge/internal/signer"
)

// Serve answers GET /admin/v1/connections/{name}/objects[?check=1] for
// one source's lister: the manifest as JSON lines, streamed (flushed
// every FlushEvery) as it is listed, with opts.Check run on every object
// when the query asks for it (and never otherwise). opts.Since and
// opts.Progress are not used. It stops when the client goes away (the
// request's context).
//
// Before anything is written it returns an *httperr.Error for the caller
// to render: 400 bad_request for a check value other than 0 or 1, 501
// checks_unavailable for ?check=1 with a nil check, and, when the listing
// fails before its first line went out (credentials, access denied, the
// store down), 503 credentials_unavailable, 499 client_closed or 502
// list_failed (the cause, for the log only, never holds a URL). Once the
// 200 is out, a failure can only cut the stream short: the missing
// summary line tells the client, and the returned error (not an
// *httperr.Error) tells the log.
func Serve(w http.ResponseWriter, r *http.Request, l Lister, opts Options) (Summary, error) {
	check := opts.Check
	opts.Check, opts.Since, opts.Progress = nil, nil, nil
	switch r.URL.Query().Get("check") {
	case "", "0":
	case "1":
		if check == nil {
			return Summary{}, httperr.New(http.StatusNotImplemented, "checks_unavailable", "asset checks are not available on this edge", nil)
		}
		opts.Check = check
	default:
		return Summary{}, httperr.New(http.StatusBadRequest, "bad_request", "check must be 0 or 1", nil)
	}
	lw := &lazyWriter{w: w}
	lw.flusher, _ = w.(http.Flusher)
	sum, err := Sync(r.Context(), l, opts, lw)
	if err != nil && !lw.started {
		switch {
		case errors.Is(err, signer.ErrCredentials):
			return sum, httperr.New(http.StatusServiceUnavailable, "credentials_unavailable", "the source's credentials are unavailable", err)
		case errors.Is(err, context.Canceled) || r.Context().Err() != nil:
			return sum, httperr.New(499, "client_closed", "client went away", err)
		}
		return sum, httperr.New(http.StatusBadGateway, "list_failed", "the source could not be listed", err)
	}
	return sum, err
}

// lazyWriter sends the 200 and its headers with the first bytes, so a
// listing that fails at once is answered with an error status instead.
type lazyWriter struct {
	w       http.ResponseWriter
	flusher http.Flusher
	started bool
}

func (l *lazyWriter) start() {
	if l.started {
		return
	}
	l.started = true
	h := l.w.Header()
	h.Set("Content-Type", "application/x-ndjson")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	l.w.WriteHeader(http.StatusOK)
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	l.start()
	return l.w.Write(p)
}

// Flush implements http.Flusher.
func (l *lazyWriter) Flush() {
	if l.started && l.flusher != nil {
		l.flusher.Flush()
	}
}
