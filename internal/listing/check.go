package listing

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/edgeproxy/edge/internal/assets"
	"github.com/edgeproxy/edge/internal/signer"
)

// checkURLTTL is the lifetime of the URL one object's check reads
// through: one presign per object, reused for its range reads, which take
// seconds.
const checkURLTTL = 15 * time.Minute

// checkTimeout bounds one object's check, all its range reads together.
const checkTimeout = 2 * time.Minute

// rangeAttempts is how often one range is tried when the store answers
// 5xx or 429, or the connection fails.
const rangeAttempts = 2

// CheckClient is the storage client of checks with c: storage reached
// directly (no proxy from the environment, as the stream transport does),
// no redirect followed, a minute per range read, and kept-alive
// connections for c's concurrency. Build it once and share it.
func CheckClient(c *assets.Checker) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.MaxIdleConnsPerHost = 2 * c.Config().MaxConcurrent
	return &http.Client{
		Transport:     tr,
		Timeout:       time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// NewCheck returns the check hook of one source for Options.Check: every
// object is read through c (internal/assets) from as few bytes as its
// format needs, and its *assets.Check goes into the manifest line.
//
// For a file source (*signer.File) the bytes come from the opened file
// (the signer's fs.FS, which follows no symlink); the stored Content-Type
// is the one the edge serves the file with (its extension, else sniffed,
// as http.ServeContent does). For every other provider each object gets
// one presigned GET (ForFetch, so SSE-C headers are sent), reused for its
// `Range: bytes=off-end` reads; the stored Content-Type is the answer's.
// client fetches them (nil: one with a 1-minute timeout per range, no
// redirects followed); now is the signing clock (nil: time.Now).
//
// At most c.Config().MaxConcurrent checks run at once whatever the
// caller's Options.Concurrency (set it to the same). A store that fails
// a read makes the object's check an "unreadable" problem naming the
// HTTP status and the store's error code, never the URL or a signature.
func NewCheck(sg signer.Signer, prefix string, c *assets.Checker, client *http.Client, now func() time.Time) (CheckFunc, error) {
	if c == nil {
		return nil, errors.New("check: no checker")
	}
	if now == nil {
		now = time.Now
	}
	if client == nil {
		client = CheckClient(c)
	}
	var open func(key string) rangeSource
	switch s := sg.(type) {
	case nil:
		return nil, errors.New("check: no signer")
	case *signer.File:
		open = func(key string) rangeSource { return &fileRange{fsys: s, name: key} }
	default:
		open = func(key string) rangeSource { return &remoteRange{sg: sg, client: client, key: key, now: now} }
	}
	sem := make(chan struct{}, c.Config().MaxConcurrent)
	return func(ctx context.Context, o Object) CheckResult {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return CheckResult{}
		}
		defer func() { <-sem }()
		key := o.StorageKey
		if key == "" {
			key = prefix + o.Key
		}
		if !strings.HasPrefix(key, prefix) {
			ck := unreadable("", "The object's key is outside the source's prefix, so the check did not read it.")
			return CheckResult{Check: ck, Problems: 1}
		}
		cctx, cancel := context.WithTimeout(ctx, checkTimeout)
		defer cancel()
		r := open(key)
		defer r.Close()
		ck, n, err := c.Check(cctx, assets.Object{Key: o.Key, Size: o.Size, R: r})
		if err != nil {
			if ctx.Err() != nil {
				return CheckResult{BytesRead: n} // the listing is ending: nothing is written
			}
			ck = unreadable(r.ContentType(), readFailure(err, cctx.Err() != nil))
		}
		return CheckResult{Check: ck, Problems: len(ck.Problems), BytesRead: n}
	}, nil
}

// unreadable is the check of an object that could not be read.
func unreadable(contentType, msg string) *assets.Check {
	return &assets.Check{ContentType: contentType, Problems: []assets.Problem{{
		Code: assets.CodeUnreadable, Severity: assets.SeverityError, Message: msg}}}
}

// readFailure says why a read failed, from the error's status and code
// only: the error never reaches the manifest.
func readFailure(err error, timedOut bool) string {
	var se *StorageError
	switch {
	case errors.As(err, &se) && se.Status == http.StatusNotFound:
		return fmt.Sprintf("The object was not found when the check read it (%s): it was removed or renamed since it was listed. Sync again.", se.what())
	case errors.As(err, &se) && (se.Status == http.StatusForbidden || se.Status == http.StatusUnauthorized):
		return fmt.Sprintf("The store refused the check's read (%s). The source's credentials must be allowed to read every object under the prefix (s3:GetObject, Storage Object Viewer, Storage Blob Data Reader): see `edge policy SOURCE`.", se.what())
	case errors.As(err, &se):
		return fmt.Sprintf("The store failed the check's read (%s). Sync again; if it persists, check the store's health.", se.what())
	case errors.Is(err, signer.ErrCredentials):
		return "The source's credentials were unavailable when the check signed the object's URL. Run `edge check -source SOURCE`, fix what it says, and sync again."
	case errors.As(err, new(*presignError)):
		return "The object's URL could not be signed for the check. Run `edge check -source SOURCE`, fix what it says, and sync again."
	case errors.Is(err, errIgnoredRange):
		return "The store ignored the check's Range request, so the object could not be read in part. The check reads from the start only; use a store that honours Range (every cloud store does)."
	case errors.Is(err, fs.ErrNotExist):
		return "The file no longer exists (or is now a symbolic link, which the edge never follows). Sync again."
	case timedOut:
		return fmt.Sprintf("Reading the object for the check took longer than %s. Sync again; if it persists, check the store's health.", checkTimeout)
	case errors.Is(err, errUnreachable):
		return "The store could not be reached while the check read the object. Sync again; if it persists, check the network path to the store."
	}
	return "The object could not be read for the check (" + errorDetail(err) + "). Sync again."
}

// errorDetail is err's text for a file read: the path is cut (it names
// the root, an operator's value).
func errorDetail(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	s := err.Error()
	if len(s) > 120 {
		s = s[:120]
	}
	return s
}

// StorageError is a store's answer to a range read other than 206 (or
// 200): its status and error code, never the URL.
type StorageError struct {
	Status int
	Code   string // the store's <Code>, "" when the body held none
}

func (e *StorageError) what() string {
	if e.Code != "" {
		return fmt.Sprintf("HTTP %d, %s", e.Status, e.Code)
	}
	return fmt.Sprintf("HTTP %d", e.Status)
}

func (e *StorageError) Error() string { return "read: the store answered " + e.what() }

var (
	errIgnoredRange = errors.New("read: the store ignored Range")
	errUnreachable  = errors.New("read: the store could not be reached")
)

// presignError is a failure to sign an object's URL; its text never
// reaches the manifest (a signer's cause may name an STS answer).
type presignError struct{ err error }

func (e *presignError) Error() string { return "read: presign: " + e.err.Error() }
func (e *presignError) Unwrap() error { return e.err }

// rangeSource is one object's bytes for one check.
type rangeSource interface {
	assets.RangeReader
	assets.ContentTyper
	Close()
}

// remoteRange reads one object through one presigned GET URL.
type remoteRange struct {
	sg     signer.Signer
	client *http.Client
	key    string
	now    func() time.Time

	p       *signer.Presigned
	ctype   string
	gotType bool
}

func (r *remoteRange) ContentType() string { return r.ctype }
func (r *remoteRange) Close()              {}

// ReadRange implements assets.RangeReader.
func (r *remoteRange) ReadRange(ctx context.Context, off, n int64) ([]byte, error) {
	if n <= 0 {
		return nil, nil
	}
	if r.p == nil {
		p, err := r.sg.Presign(ctx, signer.Request{Method: http.MethodGet, Key: r.key, At: r.now(), TTL: checkURLTTL, ForFetch: true})
		if err != nil {
			return nil, &presignError{err}
		}
		r.p = &p
	}
	var err error
	for attempt := 0; attempt < rangeAttempts; attempt++ {
		if attempt > 0 {
			t := time.NewTimer(200 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			case <-t.C:
			}
		}
		var b []byte
		var retry bool
		b, retry, err = r.get(ctx, off, n)
		if err == nil {
			return b, nil
		}
		if !retry || ctx.Err() != nil {
			break
		}
	}
	if cerr := ctx.Err(); cerr != nil {
		return nil, cerr
	}
	return nil, err
}

func (r *remoteRange) get(ctx context.Context, off, n int64) (b []byte, retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.p.URL, nil)
	if err != nil {
		return nil, false, errors.New("read: the signer returned an unusable URL")
	}
	for k, v := range r.p.Header {
		req.Header[k] = v
	}
	req.Header.Set("Range", "bytes="+strconv.FormatInt(off, 10)+"-"+strconv.FormatInt(off+n-1, 10))
	resp, err := r.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		var ue *url.Error
		if errors.As(err, &ue) && ue.Timeout() {
			return nil, true, fmt.Errorf("%w: timeout", errUnreachable)
		}
		var ne net.Error
		return nil, errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF), errUnreachable
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusPartialContent:
		if start, ok := contentRangeStart(resp.Header.Get("Content-Range")); ok && start != off {
			return nil, false, fmt.Errorf("read: the store answered bytes from %d, asked from %d", start, off)
		}
	case http.StatusOK:
		// The store ignored Range: the body starts at 0. Only the first n
		// bytes are read, then the connection is dropped.
		if off != 0 {
			return nil, false, errIgnoredRange
		}
	default:
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<10))
		return nil, resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests,
			&StorageError{Status: resp.StatusCode, Code: errorCode(body)}
	}
	if !r.gotType {
		r.ctype, r.gotType = resp.Header.Get("Content-Type"), true
	}
	want := n
	if resp.StatusCode == http.StatusPartialContent && resp.ContentLength >= 0 && resp.ContentLength < n {
		want = resp.ContentLength // the end of the object
	}
	buf := make([]byte, want)
	k, err := io.ReadFull(resp.Body, buf)
	if err != nil && !(errors.Is(err, io.ErrUnexpectedEOF) && resp.ContentLength < 0) {
		return nil, true, fmt.Errorf("%w: the answer was cut short", errUnreachable)
	}
	if resp.StatusCode == http.StatusPartialContent {
		_, _ = io.CopyN(io.Discard, resp.Body, 4<<10) // see EOF: the connection is reused
	}
	return buf[:k], false, nil
}

// contentRangeStart returns the first byte of "bytes a-b/size".
func contentRangeStart(v string) (int64, bool) {
	v, ok := strings.CutPrefix(v, "bytes ")
	if !ok {
		return 0, false
	}
	a, _, ok := strings.Cut(v, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(a, 10, 64)
	return n, err == nil
}

// fileRange reads one file of a file source.
type fileRange struct {
	fsys  fs.FS
	name  string
	f     fs.File
	ra    io.ReaderAt
	ctype string
	err   error
}

// ContentType is what the edge serves the file with (http.ServeContent):
// its extension's type, else the type sniffed from its first 512 bytes.
func (r *fileRange) ContentType() string { return r.ctype }

func (r *fileRange) Close() {
	if r.f != nil {
		r.f.Close()
	}
}

// ReadRange implements assets.RangeReader.
func (r *fileRange) ReadRange(ctx context.Context, off, n int64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if r.f == nil && r.err == nil {
		r.f, r.err = r.fsys.Open(r.name)
		if r.err == nil {
			switch f := r.f.(type) {
			case io.ReaderAt:
				r.ra = f
			case io.ReadSeeker:
				r.ra = &seekReaderAt{f}
			default:
				r.err = errors.New("the file cannot be read at an offset")
			}
		}
		r.ctype = mime.TypeByExtension(path.Ext(r.name))
	}
	if r.err != nil {
		return nil, r.err
	}
	b, err := assets.ReaderAtRange{R: r.ra}.ReadRange(ctx, off, n)
	if err == nil && off == 0 && r.ctype == "" {
		r.ctype = http.DetectContentType(b[:min(len(b), 512)])
	}
	return b, err
}

// seekReaderAt is an io.ReaderAt over a seeker, for trees whose files
// have no ReadAt; a check reads sequentially, one range at a time.
type seekReaderAt struct{ rs io.ReadSeeker }

func (s *seekReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if _, err := s.rs.Seek(off, io.SeekStart); err != nil {
		return 0, err
	}
	n, err := io.ReadFull(s.rs, p)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = io.EOF
	}
	return n, err
}
