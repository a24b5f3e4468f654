package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/edgeproxy/edge/internal/edge"
	"github.com/edgeproxy/edge/internal/listing"
	"github.com/edgeproxy/edge/internal/signer"
)

// syncCheck builds the asset check hook of `edge sync -check` for one
// source; internal/assets wires it in. Nil: -check is refused.
var syncCheck func(ctx context.Context, src edge.SourceConfig, sg signer.Signer) (listing.CheckFunc, error)

// syncCmd is `edge sync -config FILE [-since OLD.jsonl] [-check] [-o FILE] SOURCE`.
func syncCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("sync", stderr)
	cfgPath := fs.String("config", "", "config file (default $EDGE_CONFIG)")
	since := fs.String("since", "", "an older manifest: mark each line added, changed or unchanged, and list removed objects")
	check := fs.Bool("check", false, "check every asset (reads a few bytes of each)")
	out := fs.String("o", "", "write the manifest to FILE (atomically) instead of stdout")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() != 1 {
		return usageError{errors.New("exactly one SOURCE is required")}
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	name := fs.Arg(0)
	var src *edge.SourceConfig
	for i := range cfg.Sources {
		if cfg.Sources[i].Name == name {
			src = &cfg.Sources[i]
		}
	}
	if src == nil {
		return fmt.Errorf("no source named %q in the config", name)
	}
	sg, err := signer.New(ctx, src.Config, signer.Options{File: signer.FileOptions{
		BasePath: "/v1/f/" + signer.EscapePath(src.Name) + "/",
		Prefix:   src.Prefix,
	}})
	if err != nil {
		return fmt.Errorf("source %s: %w", name, err)
	}
	if c, ok := sg.(io.Closer); ok {
		defer c.Close()
	}
	lister, err := listing.New(sg, src.Prefix, listing.RemoteOptions{})
	if err != nil {
		return err
	}
	var opts listing.Options
	if *since != "" {
		f, err := os.Open(*since)
		if err != nil {
			return fmt.Errorf("-since: %w", err)
		}
		defer f.Close()
		opts.Since = f
	}
	if *check {
		if syncCheck == nil {
			return errors.New("-check: asset checks are not available in this build")
		}
		if opts.Check, err = syncCheck(ctx, *src, sg); err != nil {
			return fmt.Errorf("-check: %w", err)
		}
	}
	if isTerminal(stderr) {
		opts.Progress = func(n int64, d time.Duration) {
			fmt.Fprintf(stderr, "\r%s: %d objects, %.0f objects/s ", name, n, float64(n)/d.Seconds())
		}
		defer fmt.Fprintln(stderr)
	}
	w, commit, abort, err := output(*out, stdout)
	if err != nil {
		return err
	}
	sum, err := listing.Sync(ctx, lister, opts, w)
	if err != nil {
		abort()
		return err
	}
	if err := commit(); err != nil {
		return err
	}
	if opts.Progress != nil {
		opts.Progress(sum.Objects, time.Duration(sum.Seconds*float64(time.Second)))
	}
	return nil
}

// output returns where the manifest goes: stdout, or a temporary file
// beside path that commit renames over it (a reader never sees half a
// manifest) and abort removes.
func output(path string, stdout io.Writer) (w io.Writer, commit func() error, abort func(), err error) {
	if path == "" {
		return stdout, func() error { return nil }, func() {}, nil
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return nil, nil, nil, fmt.Errorf("-o: %w", err)
	}
	abort = func() {
		f.Close()
		os.Remove(f.Name())
	}
	commit = func() error {
		if err := f.Sync(); err != nil {
			abort()
			return fmt.Errorf("-o: %w", err)
		}
		if err := f.Close(); err != nil {
			os.Remove(f.Name())
			return fmt.Errorf("-o: %w", err)
		}
		if err := os.Chmod(f.Name(), 0o644); err != nil {
			os.Remove(f.Name())
			return fmt.Errorf("-o: %w", err)
		}
		if err := os.Rename(f.Name(), path); err != nil {
			os.Remove(f.Name())
			return fmt.Errorf("-o: %w", err)
		}
		return nil
	}
	return f, commit, abort, nil
}

// isTerminal reports whether w is a character device (a terminal): the
// progress line is for people watching, never for a log or a pipe.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
