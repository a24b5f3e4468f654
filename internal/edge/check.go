package edge

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/edgeproxy/edge/internal/signer"
)

// CheckAuth fetches the JWKS when one is configured (keys from the config
// were checked when it loaded).
func (s *Server) CheckAuth(ctx context.Context) error { return s.verifier.Check(ctx) }

// Finding is one line of `edge check`'s report on a source.
type Finding struct {
	Level   Level
	Message string
}

// Level says how much a Finding matters.
type Level int

// Levels of findings: only Problem makes `edge check` exit 1.
const (
	OK      Level = iota // verified
	Warning              // works for plain <img>, or could not be verified
	Problem              // requests will fail
)

// SourceReport is what `edge check` found for one source.
type SourceReport struct {
	Source   string
	Summary  string // provider, mode, bucket
	Findings []Finding
}

// Failed reports whether any finding is a Problem.
func (r SourceReport) Failed() bool {
	for _, f := range r.Findings {
		if f.Level == Problem {
			return true
		}
	}
	return false
}

// checkProbeKey is the object every probe asks for, under the source's
// prefix. It need not exist: storage answering "no such key" to a signed
// request proves reachability, credentials and signing.
const checkProbeKey = ".edge-check-probe"

// CheckSources probes every source the way a browser's request would go:
// credentials resolve; storage answers a URL the edge signed (a missing
// probe object is fine, a refused signature or missing bucket is not);
// and, for redirect sources, whether the bucket's CORS admits the origins
// the edge serves (Origin: null included, which browsers send after a
// cross-origin redirect). No message quotes a secret or a signature.
func (s *Server) CheckSources(ctx context.Context) []SourceReport {
	client := &http.Client{
		Timeout:       15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	var reports []SourceReport
	for _, src := range s.ordered {
		r := SourceReport{Source: src.Name, Summary: fmt.Sprintf("%s, %s mode", src.cfg.Provider, src.Mode)}
		if src.cfg.Bucket != "" {
			r.Summary += ", bucket " + src.cfg.Bucket
		}
		add := func(l Level, format string, args ...any) {
			r.Findings = append(r.Findings, Finding{l, Redact(fmt.Sprintf(format, args...))})
		}
		if src.file != nil {
			s.checkFile(src, add)
			reports = append(reports, r)
			continue
		}
		if c, ok := src.signer.(signer.Checker); ok {
			cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			err := c.Check(cctx)
			cancel()
			if err != nil {
				add(Problem, "credentials: %v", err)
				reports = append(reports, r)
				continue
			}
			add(OK, "credentials resolve")
		}
		url, ok := s.checkRead(ctx, client, src, add)
		if ok && src.mode == modeRedirect {
			s.checkCORS(ctx, client, url, add)
		}
		reports = append(reports, r)
	}
	return reports
}

func (s *Server) checkFile(src *Source, add func(Level, string, ...any)) {
	dir := strings.TrimSuffix(src.Prefix, "/")
	if dir == "" {
		dir = "."
	}
	if _, err := fs.ReadDir(src.file, dir); err != nil {
		add(Problem, "root: cannot list %q under the root: %v", dir, err)
		return
	}
	add(OK, "root readable")
}

// storageError is the error document S3, GCS (XML API) and versitygw send.
type storageError struct {
	Code string `xml:"Code"`
}

// checkRead fetches a signed URL for the probe object and reads storage's
// verdict. It returns the URL for the CORS probe.
func (s *Server) checkRead(ctx context.Context, client *http.Client, src *Source, add func(Level, string, ...any)) (string, bool) {
	key := src.Prefix + checkProbeKey
	p, err := src.signer.Presign(ctx, signer.Request{Method: http.MethodGet, Key: key, At: s.now(), TTL: 5 * time.Minute, ForFetch: true})
	if err != nil {
		add(Problem, "signing: %v", err)
		return "", false
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL, nil)
	if err != nil {
		add(Problem, "signing produced a bad URL: %v", err)
		return "", false
	}
	for k, v := range p.Header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) {
			err = ue.Unwrap() // drop the URL the client error quotes
		}
		add(Problem, "storage unreachable: %v (check endpoint, region, DNS and egress)", err)
		return "", false
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	code := resp.Header.Get("X-Ms-Error-Code") // Azure
	if code == "" {
		var se storageError
		if xml.Unmarshal(body, &se) == nil {
			code = se.Code
		}
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		add(OK, "storage reachable, signature accepted, read access granted (probe %q exists)", key)
	case resp.StatusCode == http.StatusNotFound && (code == "NoSuchBucket" || code == "ContainerNotFound"):
		add(Problem, "bucket %q does not exist at this endpoint (%s)", src.cfg.Bucket, code)
		return "", false
	case resp.StatusCode == http.StatusNotFound:
		add(OK, "storage reachable, signature accepted, read access granted (probe %q: %d %s)", key, resp.StatusCode, code)
	case code == "SignatureDoesNotMatch" || code == "InvalidAccessKeyId" || code == "AuthenticationFailed" ||
		code == "AuthorizationFailure" || code == "InvalidTokenId" || code == "ExpiredToken" || code == "AuthorizationQueryParametersError":
		add(Problem, "storage refused the edge's signature (%d %s): check the credentials, region and endpoint", resp.StatusCode, code)
		return "", false
	case resp.StatusCode == http.StatusForbidden:
		add(Warning, "storage answered %d %s for the missing probe object: S3 does so when the edge may not list the bucket; "+
			"if real objects fail too, grant s3:GetObject (or storage.objects.get, or Storage Blob Data Reader) on the prefix %q", resp.StatusCode, code, src.Prefix)
	default:
		add(Problem, "storage answered %d %s to a signed GET", resp.StatusCode, code)
		return "", false
	}
	return p.URL, true
}

// checkCORS sends the preflight a browser would send for a crossorigin
// <img> that followed the edge's redirect: Origin null (edge on another
// origin than the page) and each listed origin without wildcards (edge
// under the page's origin).
func (s *Server) checkCORS(ctx context.Context, client *http.Client, url string, add func(Level, string, ...any)) {
	origins := []string{"null"}
	for _, o := range s.cfg.CORS.AllowedOrigins {
		if !strings.Contains(o, "*") {
			origins = append(origins, o)
		}
	}
	for _, origin := range origins {
		req, err := http.NewRequestWithContext(ctx, http.MethodOptions, url, nil)
		if err != nil {
			continue
		}
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", http.MethodGet)
		resp, err := client.Do(req)
		if err != nil {
			add(Warning, "bucket CORS: the preflight for Origin %s failed: %v", origin, errors.Unwrap(err))
			continue
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		got := resp.Header.Get("Access-Control-Allow-Origin")
		if got == "*" || got == origin {
			add(OK, "bucket CORS admits Origin %s", origin)
			continue
		}
		if origin == "null" {
			add(Warning, `bucket CORS does not admit Origin null: <img crossorigin> pages on another origin than the edge cannot read pixels (plain <img> works); add "null" to the bucket's AllowedOrigins (README: bucket-side setup)`)
		} else {
			add(Warning, "bucket CORS does not admit Origin %s: <img crossorigin> pages there, with the edge under their origin, cannot read pixels", origin)
		}
	}
}
