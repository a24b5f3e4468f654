package listing

import (
	"net/http"

	"github.com/edgeproxy/edge/internal/httperr"
)

// Serve answers GET /admin/v1/connections/{name}/objects[?check=1] for
// one source's lister: the manifest as JSON lines, streamed (flushed
// every FlushEvery) as it is listed, with check run on every object when
// the query asks for it. It stops when the client goes away.
//
// Before anything is written it returns an *httperr.Error for the caller
// to render (400 bad_request for a check value other than 0 or 1, 501
// checks_unavailable for ?check=1 with a nil check). Once the 200 is out,
// a failure can only cut the stream short: the missing summary line tells
// the client, and the returned error tells the log.
func Serve(w http.ResponseWriter, r *http.Request, l Lister, check CheckFunc) (Summary, error) {
	opts := Options{}
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
	h := w.Header()
	h.Set("Content-Type", "application/x-ndjson")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	return Sync(r.Context(), l, opts, w)
}
