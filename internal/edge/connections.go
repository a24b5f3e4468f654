package edge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/edgeproxy/edge/internal/admin"
	"github.com/edgeproxy/edge/internal/connections"
	"github.com/edgeproxy/edge/internal/signer"
	"github.com/edgeproxy/edge/internal/source"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.yaml.in/yaml/v3"
)

// connState is what the Server knows of the connection stores: the
// winner of every name (after connections.Merge) with the version of it
// in force, and the entries that lost their name.
type connState struct {
	mu        sync.Mutex // serialises applies
	live      map[string]*liveConn
	conflicts []connections.Conflict
	// changes counts applied entry versions by origin and result
	// (applied, invalid, removed, conflict); nil until wired.
	changes *prometheus.CounterVec
}

// liveConn is one connection name as last applied.
type liveConn struct {
	entry connections.Entry // the latest version seen
	// src is the version in force: the last good one (nil when no version
	// was ever good); good is its entry.
	src  *Source
	good connections.Entry
	// problems are the latest version's, when it is invalid.
	problems []admin.Problem
}

// retireGrace is how long a replaced source's transport and file handle
// outlive it: requests in flight hold its pointer and finish with it.
var retireGrace = 30 * time.Second

// applyConnections applies one snapshot of every store: Merge with the
// config's names, parse and build each new or changed version, swap the
// source set (unchanged *Source pointers kept, so their cached URLs stay
// valid), then drop what changed or went away. It runs off the request
// path (the watcher's goroutine); requests keep reading the set in force.
func (s *Server) applyConnections(entries []connections.Entry) {
	c := &s.conns
	c.mu.Lock()
	defer c.mu.Unlock()
	winners, conflicts := connections.Merge(s.configNames(), entries)
	next := make(map[string]*liveConn, len(winners))
	var retired, built []*Source
	changed := false
	for _, e := range winners {
		old := c.live[e.Name]
		if old != nil && old.entry.Origin == e.Origin && old.entry.Path == e.Path && old.entry.Version == e.Version {
			next[e.Name] = old
			continue
		}
		lc := &liveConn{entry: e}
		switch {
		case old != nil && old.entry.Origin == e.Origin:
			lc.src, lc.good = old.src, old.good
		case old != nil && old.src != nil:
			// The name moved to another origin (a file deleted, a table
			// row winning now): the last good version was the other
			// origin's, not this entry's, and goes.
			retired = append(retired, old.src)
			changed = true
		}
		next[e.Name] = lc
		sc, problems := parseEntry(e)
		if problems == nil {
			src, err := s.buildConnSource(*sc)
			if err != nil {
				problems = []admin.Problem{{Error: "config_invalid", Message: Redact(err.Error())}}
			} else {
				if lc.src != nil {
					retired = append(retired, lc.src)
				}
				lc.src, lc.good = src, e
				built = append(built, src)
				changed = true
				s.countChange(e.Origin, "applied")
				s.log.Info("connection applied", zap.String("source", e.Name), zap.String("origin", e.Origin), zap.String("version", e.Version))
			}
		}
		if problems != nil {
			lc.problems = problems
			s.countChange(e.Origin, "invalid")
			msgs := make([]string, len(problems))
			for i, p := range problems {
				msgs[i] = p.Error + ": " + p.Message
			}
			kept := "none"
			if lc.src != nil {
				kept = lc.good.Version
			}
			s.log.Warn("connection invalid: the last good version stays in force", zap.String("source", e.Name),
				zap.String("origin", e.Origin), zap.String("path", e.Path), zap.String("version", e.Version),
				zap.String("in_force", kept), zap.Strings("problems", msgs))
		}
	}
	var removed []string
	for name, old := range c.live {
		if next[name] != nil {
			continue
		}
		if old.src != nil {
			retired = append(retired, old.src)
			removed = append(removed, name)
			changed = true
		}
		s.countChange(old.entry.Origin, "removed")
		s.log.Info("connection removed", zap.String("source", name), zap.String("origin", old.entry.Origin))
	}
	for _, cf := range conflicts {
		known := false
		for _, prev := range c.conflicts {
			if prev.Entry.Origin == cf.Entry.Origin && prev.Entry.Path == cf.Entry.Path && prev.Entry.Version == cf.Entry.Version && prev.Entry.Name == cf.Entry.Name {
				known = true
				break
			}
		}
		if !known {
			s.countChange(cf.Entry.Origin, "conflict")
			s.log.Warn("connection name taken by another origin", zap.String("source", cf.Entry.Name),
				zap.String("origin", cf.Entry.Origin), zap.String("path", cf.Entry.Path), zap.String("winner", cf.WinnerOrigin))
		}
	}
	c.live, c.conflicts = next, conflicts
	if changed {
		s.swapSet()
	}
	s.retire(retired, removed)
	s.checkInBackground(built)
	s.updateReady()
}

// configNames are the names of the config's sources.
func (s *Server) configNames() []string {
	names := make([]string, len(s.cfg.Sources))
	for i := range s.cfg.Sources {
		names[i] = s.cfg.Sources[i].Name
	}
	return names
}

// swapSet builds the set in force from the config's sources and the
// connections in force, and swaps it in. Call with conns.mu held.
func (s *Server) swapSet() {
	srcs := make([]*Source, 0, len(s.configSrcs)+len(s.conns.live))
	srcs = append(srcs, s.configSrcs...)
	names := make([]string, 0, len(s.conns.live))
	for name, lc := range s.conns.live {
		if lc.src != nil {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		srcs = append(srcs, s.conns.live[n].src)
	}
	s.set.Store(newSourceSet(srcs))
}

// retire drops what replaced or removed sources hold: their cached URLs
// now (no URL signed for an old version is handed out once the new set is
// in force: the cache key holds the *Source, and new requests load the new
// one), their metric series (removed names), and, after retireGrace, their
// stream transport and file handle (requests in flight still use them).
func (s *Server) retire(old []*Source, removed []string) {
	if len(old) == 0 {
		return
	}
	drop := make(map[*Source]bool, len(old))
	for _, src := range old {
		drop[src] = true
	}
	s.urls.RemoveFunc(func(k urlKey) bool { return drop[k.src] })
	for _, name := range removed {
		s.metrics.sourceUp.DeleteLabelValues(name)
	}
	time.AfterFunc(retireGrace, func() {
		// Serialised with applies: one that brings the name back must
		// not lose its stream transport to this timer.
		s.conns.mu.Lock()
		defer s.conns.mu.Unlock()
		set := s.sources()
		for _, src := range old {
			if src.closer != nil {
				src.closer.Close()
			}
			if set.byName[src.Name] == nil && !s.closed.Load() {
				s.streams.RemoveSource(src.Name)
			}
		}
	})
}

// buildConnSource builds one connection's source, bounded in time.
func (s *Server) buildConnSource(sc source.Config) (*Source, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.buildSource(ctx, sc, s.opts)
}

// checkInBackground checks the new sources' credentials, four at a time,
// as the readiness watcher does: a failing source shows
// credentials_failing and edge_source_up 0.
func (s *Server) checkInBackground(srcs []*Source) {
	for _, src := range srcs {
		c, ok := src.signer.(signer.Checker)
		if !ok {
			continue
		}
		go func() {
			s.checkSem <- struct{}{}
			defer func() { <-s.checkSem }()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := c.Check(ctx)
			problem := ""
			if err != nil {
				problem = Redact(err.Error())
				s.log.Warn("connection credentials failing", zap.String("source", src.Name), zap.String("cause", problem))
			}
			src.setState(err == nil, problem, s.now())
		}()
	}
}

func (s *Server) countChange(origin, result string) {
	if s.conns.changes != nil {
		s.conns.changes.WithLabelValues(origin, result).Inc()
	}
}

// parseEntry parses a winner's spec: its envelope problem, or
// source.ParseSpec's problems (each naming its key, none echoing a value).
func parseEntry(e connections.Entry) (*source.Config, []admin.Problem) {
	if e.Problem != nil {
		var p *connections.Problem
		if errors.As(e.Problem, &p) {
			return nil, []admin.Problem{{Error: p.Code, Message: p.Message}}
		}
		return nil, []admin.Problem{{Error: "unreadable", Message: "the connection could not be read"}}
	}
	data, err := withName(e.Data, e.Name)
	if err != nil {
		return nil, []admin.Problem{{Error: connections.ProblemSyntax, Message: "the spec could not be read as a mapping"}}
	}
	sc, err := source.ParseSpec(data, os.LookupEnv)
	if err != nil {
		var out []admin.Problem
		for _, p := range specProblems(err) {
			for _, line := range strings.Split(p.Error(), "\n") {
				if line = strings.TrimSpace(line); line != "" {
					out = append(out, admin.Problem{Error: "config_invalid", Message: line})
				}
			}
		}
		return nil, out
	}
	if sc.Name != e.Name {
		return nil, []admin.Problem{{Error: connections.ProblemNameMismatch, Message: "name: must equal the connection's name"}}
	}
	return sc, nil
}

// withName returns the spec with `name` set to the connection's name when
// the spec leaves it out (a file's base name or a row's name names it).
func withName(data []byte, name string) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return nil, errors.New("not a mapping")
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "name" {
			return data, nil
		}
	}
	root.Content = append([]*yaml.Node{
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: "name"},
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: name, Style: yaml.DoubleQuotedStyle},
	}, root.Content...)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	enc.Close()
	return buf.Bytes(), nil
}

// Connections lists every source from every origin (the admin API's
// CONN): the config's, the connections in force (or invalid), and the
// entries that lost their name, sorted by name then origin. Nothing in it
// holds a credential.
func (s *Server) Connections() []admin.Conn {
	var out []admin.Conn
	for _, src := range s.configSrcs {
		out = append(out, connOf(src, connections.OriginConfig, s.startedAt, nil))
	}
	c := &s.conns
	c.mu.Lock()
	for _, lc := range c.live {
		at := lc.entry.LoadedAt
		if lc.src != nil && lc.problems == nil {
			at = lc.good.LoadedAt
		}
		conn := connOf(lc.src, lc.entry.Origin, at, lc.problems)
		conn.Name = lc.entry.Name
		out = append(out, conn)
	}
	for _, cf := range c.conflicts {
		winner := cf.WinnerOrigin
		if cf.WinnerPath != "" {
			winner += " (" + cf.WinnerPath + ")"
		}
		conn := admin.Conn{
			Name: cf.Entry.Name, Origin: cf.Entry.Origin, State: admin.StateConflict, LoadedAt: cf.Entry.LoadedAt,
			Problems: []admin.Problem{{Error: "name_conflict", Message: fmt.Sprintf("the name is taken by origin %s, which wins", winner)}},
		}
		if sc, problems := parseEntry(cf.Entry); problems == nil {
			conn.Provider, conn.Mode, conn.Bucket, conn.Prefix = sc.Provider, sc.Mode, sc.Bucket, sc.Prefix
		}
		out = append(out, conn)
	}
	c.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return originOrder(out[i].Origin) < originOrder(out[j].Origin)
	})
	return out
}

func originOrder(o string) int {
	switch o {
	case connections.OriginConfig:
		return 0
	case connections.OriginDir:
		return 1
	}
	return 2
}

// connOf describes src (nil: no version in force) as a CONN.
func connOf(src *Source, origin string, at time.Time, problems []admin.Problem) admin.Conn {
	conn := admin.Conn{Origin: origin, State: admin.StateOK, LoadedAt: at, Problems: problems}
	if src != nil {
		conn.Name = src.Name
		conn.Provider, conn.Mode, conn.Bucket, conn.Prefix = src.cfg.Provider, src.cfg.Mode, src.cfg.Bucket, src.cfg.Prefix
		if st := src.state.Load(); st != nil && !st.Up && problems == nil {
			conn.State = admin.StateCredentialsFailing
			conn.Problems = []admin.Problem{{Error: "credentials_unavailable", Message: st.Problem}}
		}
	}
	if problems != nil {
		conn.State = admin.StateInvalid
	}
	return conn
}
