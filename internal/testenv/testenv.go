// Package testenv starts real storage servers on loopback for integration
// tests: versitygw (S3), MinIO (S3 with STS) and Azurite (Azure Blob). All
// check presigned signatures and expiry the way the clouds do (see
// ../shared/TESTING.md), so tests built on them prove signing, not just plumbing.
//
// Only _test.go files import this package. The servers are installed under
// the git-ignored .tools/ directory by `make tools`; a missing binary fails
// the test with that instruction instead of skipping it.
package testenv

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// RepoRoot returns the module root: the nearest directory at or above the
// working directory that holds go.mod.
func RepoRoot(tb testing.TB) string {
	tb.Helper()
	root, err := repoRoot()
	if err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	return root
}

var (
	rootMu  sync.Mutex
	rootDir string // cached once found, so a later t.Chdir does not matter
)

func repoRoot() (string, error) {
	rootMu.Lock()
	defer rootMu.Unlock()
	if rootDir != "" {
		return rootDir, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	dir, err := findGoMod(wd)
	if err != nil {
		// A test may have changed into a temporary directory before the
		// first call: fall back to where this source file lives.
		if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
			if d, err2 := findGoMod(filepath.Dir(file)); err2 == nil {
				dir, err = d, nil
			}
		}
	}
	if err != nil {
		return "", err
	}
	rootDir = dir
	return dir, nil
}

func findGoMod(dir string) (string, error) {
	start := dir
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod at or above %s", start)
		}
		dir = parent
	}
}

// toolPaths maps a tool name to its path under .tools/.
var toolPaths = map[string]string{
	"versitygw": filepath.Join("bin", "versitygw"),
	"minio":     filepath.Join("bin", "minio"),
	"azurite":   filepath.Join("azurite", "node_modules", "azurite", "dist", "src", "blob", "main.js"),
}

// Tool returns the absolute path of an installed tool under .tools/:
// "versitygw" or "minio" (the binaries) or "azurite" (the blob service's
// main.js, run with node). It fails tb, telling the reader to run `make tools`, when the tool
// is missing or the name is unknown: integration tests never skip silently.
func Tool(tb testing.TB, name string) string {
	tb.Helper()
	rel, ok := toolPaths[name]
	if !ok {
		tb.Fatalf("testenv: unknown tool %q (known: versitygw, minio, azurite)", name)
	}
	p := filepath.Join(RepoRoot(tb), ".tools", rel)
	if _, err := os.Stat(p); err != nil {
		tb.Fatalf("testenv: %s is not installed (%v): run `make tools`", name, err)
	}
	return p
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. The
// start helpers retry when another process takes it before their server
// binds it.
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("testenv: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// LocalhostTransport returns a fresh transport that dials "localhost" and
// every host name ending in ".localhost" (virtual-host buckets such as
// bucket.localhost:PORT, or test origins such as app.localhost:PORT) to
// 127.0.0.1, keeping the port, so no DNS is needed. Other names dial
// normally. Proxies from the environment are ignored.
func LocalhostTransport() *http.Transport {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, rewriteLocalhost(addr))
		},
		ForceAttemptHTTP2:     false,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   100,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
	}
}

func rewriteLocalhost(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}

// LocalhostClient returns an *http.Client on LocalhostTransport that does
// not follow redirects (the caller sees the 3xx itself) and gives up after
// 30 seconds.
func LocalhostClient() *http.Client {
	return &http.Client{
		Transport: LocalhostTransport(),
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
		Timeout: 30 * time.Second,
	}
}

// errf formats a helper failure with a prefix.
func errf(format string, args ...any) string {
	return "testenv: " + fmt.Sprintf(format, args...)
}
