package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/edgeproxy/edge/internal/signer"
	"github.com/edgeproxy/edge/internal/source"
)

// sourceSet is every source the server answers for, immutable once built:
// a change builds a whole new set and swaps the Server's pointer, so a
// request in flight finishes with the set (and Source) it started with,
// and the hit path reads a map without a lock.
type sourceSet struct {
	byName  map[string]*Source
	ordered []*Source // the config's order: checks, and ties in byBucket
	// byBucket indexes /v1/u's cloud URLs: provider, bucket and (azure)
	// account → the sources on it, in config order.
	byBucket map[bucketKey][]*Source
	// byHost indexes http(s) URLs on a custom endpoint: the endpoint's
	// host (path-style) and BUCKET.host (virtual-hosted) → sources.
	byHost map[string][]*Source
}

// bucketKey names one bucket of one cloud.
type bucketKey struct {
	provider, account, bucket string
}

// newSourceSet indexes srcs (already built, in config order).
func newSourceSet(srcs []*Source) *sourceSet {
	set := &sourceSet{
		byName:   make(map[string]*Source, len(srcs)),
		ordered:  srcs,
		byBucket: map[bucketKey][]*Source{},
		byHost:   map[string][]*Source{},
	}
	for _, src := range srcs {
		set.byName[src.Name] = src
		c := &src.cfg
		if c.Provider == signer.ProviderFile {
			continue
		}
		k := bucketKey{provider: c.Provider, bucket: c.Bucket}
		if c.Provider == signer.ProviderAzure {
			k.account = c.Account
		}
		set.byBucket[k] = append(set.byBucket[k], src)
		if src.endpointHost != "" {
			set.byHost[src.endpointHost] = append(set.byHost[src.endpointHost], src)
			if src.virtualHost != src.endpointHost {
				set.byHost[src.virtualHost] = append(set.byHost[src.virtualHost], src)
			}
		}
	}
	return set
}

// sources is the set in force.
func (s *Server) sources() *sourceSet { return s.set.Load() }

// source returns the source named name in the set in force, or nil.
func (s *Server) source(name string) *Source { return s.set.Load().byName[name] }

// ordered yields the sources in force in config order. It is an iterator
// (for _, src := range s.ordered) so that callers keep reading one set.
func (s *Server) ordered(yield func(int, *Source) bool) {
	for i, src := range s.set.Load().ordered {
		if !yield(i, src) {
			return
		}
	}
}

// buildSource makes one source's signer and indexes, once.
func (s *Server) buildSource(ctx context.Context, sc source.Config, opts Options) (*Source, error) {
	src := &Source{Name: sc.Name, Prefix: sc.Prefix, Mode: sc.Mode, ttl: sc.URLTTL, window: sc.SigningWindow, cfg: sc}
	src.mode = modeRedirect
	if sc.Mode == ModeStream {
		src.mode = modeStream
	}
	src.logName = sc.Name
	if sc.Endpoint != "" {
		u, _ := url.Parse(sc.Endpoint)
		src.endpointHost = strings.ToLower(u.Host)
		src.virtualHost = strings.ToLower(sc.Bucket) + "." + src.endpointHost
		if p := strings.Trim(u.Path, "/"); p != "" {
			src.endpointPath = p + "/"
		}
	}
	sopts := signer.Options{Now: opts.Now, File: signer.FileOptions{
		BasePath: "/v1/f/" + signer.EscapePath(sc.Name) + "/",
		Prefix:   sc.Prefix,
		FS:       opts.FileFS[sc.Name],
	}}
	sg, err := signer.New(ctx, sc.Config, sopts)
	if err != nil {
		return nil, err
	}
	src.file, _ = sg.(fileSigner)
	src.closer, _ = sg.(io.Closer)
	src.signer = withDeadline(sg, s.cfg.Server.RequestTimeout)
	if src.mode == modeStream && src.file == nil {
		s.streams.AddSource(sc.Name) // its transport, built once
	}
	src.up = s.metrics.sourceUp.WithLabelValues(sc.Name)
	src.up.Set(1)
	src.state.Store(&SourceState{Name: sc.Name, Up: true})
	return src, nil
}

// buildSources builds every configured source into a set.
func (s *Server) buildSources(ctx context.Context, cfgs []source.Config, opts Options) (*sourceSet, error) {
	var errs []error
	var srcs []*Source
	for i, sc := range cfgs {
		src, err := s.buildSource(ctx, sc, opts)
		if err != nil {
			errs = append(errs, fmt.Errorf("sources[%d] (%s): %w", i, sc.Name, err))
			continue
		}
		srcs = append(srcs, src)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return newSourceSet(srcs), nil
}

// SourceState is one source's credential state, from the periodic check.
type SourceState struct {
	Name string
	// Up is false while the source's credentials fail: its requests answer
	// 503 credentials_unavailable.
	Up bool
	// Problem says what failed, redacted; "" when up.
	Problem string
	// CheckedAt is when the state was last checked; zero before the first
	// check.
	CheckedAt time.Time
}

// SourceStates returns every source's credential state, in config order.
func (s *Server) SourceStates() []SourceState {
	set := s.sources()
	out := make([]SourceState, 0, len(set.ordered))
	for _, src := range set.ordered {
		out = append(out, *src.state.Load())
	}
	return out
}

// sourceRuntime is the mutable part of a Source: its checked state.
type sourceRuntime struct {
	state atomic.Pointer[SourceState]
}

// deadlineSigner bounds every signing by server.request_timeout: a
// signing that waits (credentials from STS, the metadata service, Entra
// ID) answers within the request's deadline, not whenever the network
// gives up. Cache hits never reach it, so the hit path pays nothing.
//
// A context whose deadline already falls within the timeout is passed as
// it is: the URL cache's loads run under one ending request_timeout after
// the load starts (Server.urls.LoadTimeout), which costs nothing until a
// signer waits on it, where context.WithTimeout cost eight allocations
// and a goroutine on every miss (a Loader's context is not one the
// context package can cancel children of directly).
type deadlineSigner struct {
	signer.Signer
	timeout time.Duration
}

func (d deadlineSigner) Presign(ctx context.Context, r signer.Request) (signer.Presigned, error) {
	if dl, ok := ctx.Deadline(); ok && !dl.After(time.Now().Add(d.timeout)) {
		return d.Signer.Presign(ctx, r)
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	return d.Signer.Presign(ctx, r)
}

// checkingDeadlineSigner keeps the wrapped signer's Check visible.
type checkingDeadlineSigner struct {
	deadlineSigner
	signer.Checker
}

func (d checkingDeadlineSigner) Presign(ctx context.Context, r signer.Request) (signer.Presigned, error) {
	return d.deadlineSigner.Presign(ctx, r)
}

func withDeadline(sg signer.Signer, timeout time.Duration) signer.Signer {
	if timeout <= 0 {
		return sg
	}
	d := deadlineSigner{Signer: sg, timeout: timeout}
	if c, ok := sg.(signer.Checker); ok {
		return checkingDeadlineSigner{deadlineSigner: d, Checker: c}
	}
	return d
}
