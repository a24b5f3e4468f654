package edge

import (
	"context"
	"errors"
	"net/http"
	"sync"

	"github.com/edgeproxy/edge/internal/assets"
	"github.com/edgeproxy/edge/internal/httperr"
	"github.com/edgeproxy/edge/internal/listing"
	"github.com/edgeproxy/edge/internal/signer"
	"go.uber.org/zap"
)

// objectChecks is the asset checker and the storage client every
// objects listing with ?check=1 shares, built once (the checker holds no
// per-object state; the client keeps its connections between listings).
var objectChecks = sync.OnceValues(func() (*assets.Checker, *http.Client) {
	c, err := assets.New(assets.Defaults())
	if err != nil {
		panic("assets.Defaults does not validate: " + err.Error())
	}
	return c, listing.CheckClient(c)
})

// ServeObjects answers GET /admin/v1/connections/{name}/objects[?check=1]
// (PRODUCT.md, "Asset sync and checks"): the manifest of the source name
// in the set in force, as JSON lines streamed as it is listed, each
// object checked with ?check=1. A client that goes away stops the listing.
//
// It returns an error for the one renderer (writeError) only before the
// 200 is out: 404 unknown_source, 405, 400 for a bad check value, and
// 502 list_failed / 503 credentials_unavailable when the listing fails
// before its first line. A failure after that cuts the stream short (no
// summary line) and is logged here; the answer is then nil, so the caller
// never writes after the stream has started. Mount it as:
//
//	if err := s.ServeObjects(w, r, name); err != nil { writeError(w, r, err) }
func (s *Server) ServeObjects(w http.ResponseWriter, r *http.Request, name string) error {
	if r.Method != http.MethodGet {
		w.Header()["Allow"] = []string{http.MethodGet}
		return errMethod
	}
	src := s.source(name)
	if src == nil {
		return errUnknownSource
	}
	sg := unwrapSigner(src.signer)
	l, err := listing.New(sg, src.Prefix, listing.RemoteOptions{Now: s.now})
	if err != nil {
		return newError(http.StatusNotImplemented, "list_unavailable", "this source's provider cannot be listed", err)
	}
	checker, client := objectChecks()
	check, err := listing.NewCheck(sg, src.Prefix, checker, client, s.now)
	if err != nil {
		return newError(http.StatusInternalServerError, "internal", "internal error", err)
	}
	sum, err := listing.Serve(w, r, l, listing.Options{Check: check, Concurrency: checker.Config().MaxConcurrent, Now: s.now})
	var he *httperr.Error
	switch {
	case err == nil:
		s.log.Debug("objects listed", zap.String("source", src.logName), zap.Int64("objects", sum.Objects), zap.Int64("problems", sum.Problems))
		return nil
	case errors.As(err, &he):
		return err
	case errors.Is(err, context.Canceled) || r.Context().Err() != nil:
		s.log.Debug("objects listing stopped: the client went away", zap.String("source", src.logName), zap.Int64("objects", sum.Objects))
		return nil
	}
	// The cause names no URL or signature (listing's errors carry the
	// status and the store's code only).
	s.log.Warn("objects listing cut short", zap.String("source", src.logName), zap.Int64("objects", sum.Objects), zap.Error(err))
	return nil
}

// unwrapSigner returns the provider's own signer behind the deadline
// wrapper (sources.go): listing.New and NewCheck tell providers apart by
// its type (file, Azure, list-page signers).
func unwrapSigner(sg signer.Signer) signer.Signer {
	switch d := sg.(type) {
	case deadlineSigner:
		return d.Signer
	case checkingDeadlineSigner:
		return d.deadlineSigner.Signer
	}
	return sg
}
