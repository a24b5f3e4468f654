package listing

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/edgeproxy/edge/internal/signer"
)

// maxPageBytes bounds one page's body: 5000 Azure blobs with every
// property come to a few MB; anything far larger is not a listing.
const maxPageBytes = 64 << 20

// maxEmptyPages bounds the pages in a row that hold no object: Azure may
// answer an empty page with a marker (its server-side time ran out), but a
// store that keeps doing so, with two tokens in turn or a new one each
// time, would otherwise keep the listing going for ever.
const maxEmptyPages = 100

// maxPageEntries bounds the objects of one page: stores give at most 1000
// (S3, GCS) or 5000 (Azure). Decoding a hostile page whole costs some 25
// bytes of memory per byte of body (tiny <Contents> elements, a few pages
// in flight), so entries are counted before the page is decoded.
const maxPageEntries = 10000

// pageAttempts is how often one page is tried when the store answers 5xx
// or 429, or the connection fails.
const pageAttempts = 3

// RemoteOptions tune a Remote; the zero value works.
type RemoteOptions struct {
	// Client fetches the pages; nil means one with a 2-minute timeout per
	// page and no redirects followed.
	Client *http.Client
	// Now gives the signing time of each page; nil means time.Now.
	Now func() time.Time
	// PageSize caps each page (max-keys, maxresults); 0 keeps the store's
	// default (1000 for S3 and GCS, 5000 for Azure).
	PageSize int
	// Order is the order the store lists keys in; nil means ByteOrder.
	// New sets UTF16Order for Azure sources (see UTF16Order).
	Order KeyOrder
}

// Remote lists a bucket prefix through presigned list URLs: each page is
// signed by the source's signer just before it is fetched, parsed whole
// (one page, a few hundred KB, is all it holds) and handed on while the
// next page is already being fetched.
//
// It parses the S3 ListObjectsV2 answer (also what GCS's interop endpoint,
// versitygw and MinIO give), GCS's XML ListBucketResult with NextMarker,
// and Azure's List Blobs EnumerationResults, telling them apart by the root
// element. Every key must start with the prefix and sort after the one
// before it in the store's order (Order: byte order, but UTF-16 code unit
// order for Azure); anything else fails the listing (ErrOrder),
// because a manifest out of order cannot be diffed exactly.
//
// Azure lists Etag without quotes; Remote adds them, as in the ETag header
// a GET answers, so every provider's manifest has quoted ETags.
type Remote struct {
	signer  PageSigner
	prefix  string
	opts    RemoteOptions
	skipped atomic.Int64
}

// Order implements Ordered.
func (r *Remote) Order() KeyOrder { return r.opts.Order }

// Skipped is the number of keys the last List left out because they were
// not valid UTF-8 (S3 keys always are; a decoded key might not be).
func (r *Remote) Skipped() int64 { return r.skipped.Load() }

// NewRemote returns the Remote listing prefix through s.
func NewRemote(s PageSigner, prefix string, opts RemoteOptions) *Remote {
	if opts.Client == nil {
		opts.Client = &http.Client{
			Timeout:       2 * time.Minute,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Order == nil {
		opts.Order = ByteOrder
	}
	return &Remote{signer: s, prefix: prefix, opts: opts}
}

// page is what one listing page holds.
type page struct {
	objects []Object
	next    string // token or marker of the next page; "" on the last
	skipped int    // keys left out: not valid UTF-8
	err     error
}

// List implements Lister.
func (r *Remote) List(ctx context.Context, yield func(Object) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pages := make(chan page, 1)
	go func() {
		defer close(pages)
		token, empty := "", 0
		for {
			p := r.fetch(ctx, token)
			if p.err == nil && p.next != "" && p.next == token {
				p.err = errors.New("list: the store answered the same continuation token twice")
			}
			if empty = empty + 1; len(p.objects) > 0 {
				empty = 0
			}
			if p.err == nil && p.next != "" && empty >= maxEmptyPages {
				p.err = fmt.Errorf("list: the store answered %d pages in a row without an object, each with a continuation token", empty)
			}
			select {
			case pages <- p:
			case <-ctx.Done():
				return
			}
			if p.err != nil || p.next == "" {
				return
			}
			token = p.next
		}
	}()
	r.skipped.Store(0)
	prev, first := "", true
	for p := range pages {
		if p.err != nil {
			return p.err
		}
		r.skipped.Add(int64(p.skipped))
		for _, o := range p.objects {
			if !first && r.opts.Order(o.StorageKey, prev) <= 0 {
				return orderError("list", prev, o.StorageKey)
			}
			prev, first = o.StorageKey, false
			if o.Key == "" {
				continue // the prefix itself (a folder marker): /v1/s cannot name it
			}
			if err := yield(o); err != nil {
				return err
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// fetch signs, gets and parses one page, retrying transient failures.
func (r *Remote) fetch(ctx context.Context, token string) page {
	var err error
	for attempt := 0; attempt < pageAttempts; attempt++ {
		if attempt > 0 {
			t := time.NewTimer(time.Duration(attempt*attempt) * 250 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return page{err: ctx.Err()}
			case <-t.C:
			}
		}
		var body []byte
		var retry bool
		body, retry, err = r.get(ctx, token)
		if err == nil {
			objs, next, skipped, perr := parsePage(body, r.prefix)
			return page{objects: objs, next: next, skipped: skipped, err: perr}
		}
		if !retry || ctx.Err() != nil {
			break
		}
	}
	if cerr := ctx.Err(); cerr != nil {
		return page{err: cerr}
	}
	return page{err: err}
}

// get fetches one page's body. Its errors never carry the URL (it holds a
// signature): only the status, the store's error code and the network
// error's own cause.
func (r *Remote) get(ctx context.Context, token string) (body []byte, retry bool, err error) {
	u, err := r.signer.PresignList(ctx, signer.ListRequest{Prefix: r.prefix, Token: token, MaxKeys: r.opts.PageSize, At: r.opts.Now()})
	if err != nil {
		return nil, false, fmt.Errorf("list: presign: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, false, errors.New("list: the signer returned an unusable URL")
	}
	resp, err := r.opts.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		var ne net.Error
		return nil, !errors.Is(err, context.Canceled) && (errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)), fmt.Errorf("list: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<10))
		retry = resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests
		if code := errorCode(b); code != "" {
			return nil, retry, fmt.Errorf("list: the store answered HTTP %d (%s)", resp.StatusCode, code)
		}
		return nil, retry, fmt.Errorf("list: the store answered HTTP %d", resp.StatusCode)
	}
	body, err = io.ReadAll(io.LimitReader(resp.Body, maxPageBytes+1))
	if err != nil {
		return nil, true, fmt.Errorf("list: reading the page: %w", err)
	}
	if len(body) > maxPageBytes {
		return nil, false, fmt.Errorf("list: a page larger than %d MB", maxPageBytes>>20)
	}
	return body, false, nil
}

// errorCode returns the <Code> of an S3, GCS or Azure error body, if it
// looks like a code (a short word): never the message, which can echo
// the request.
func errorCode(b []byte) string {
	var e struct {
		Code string `xml:"Code"`
	}
	if xml.Unmarshal(b, &e) != nil || len(e.Code) > 64 {
		return ""
	}
	for _, c := range e.Code {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return ""
		}
	}
	return e.Code
}

// listXML is one page of any of the three answers: S3 ListObjectsV2 and
// GCS ListBucketResult share element names; Azure's EnumerationResults
// has its own (https://learn.microsoft.com/rest/api/storageservices/list-blobs).
type listXML struct {
	XMLName xml.Name

	// ListBucketResult (S3 V2, GCS V1).
	EncodingType          string `xml:"EncodingType"`
	IsTruncated           bool   `xml:"IsTruncated"`
	NextContinuationToken string `xml:"NextContinuationToken"`
	Contents              []struct {
		Key          string `xml:"Key"`
		LastModified string `xml:"LastModified"`
		ETag         string `xml:"ETag"`
		Size         int64  `xml:"Size"`
	} `xml:"Contents"`

	// Both: GCS and Azure continue with NextMarker.
	NextMarker string `xml:"NextMarker"`

	// EnumerationResults (Azure).
	Blobs struct {
		Blob []struct {
			Name struct {
				Encoded bool   `xml:"Encoded,attr"`
				Value   string `xml:",chardata"`
			} `xml:"Name"`
			Properties struct {
				LastModified  string `xml:"Last-Modified"`
				Etag          string `xml:"Etag"`
				ContentLength int64  `xml:"Content-Length"`
				ResourceType  string `xml:"ResourceType"`
			} `xml:"Properties"`
		} `xml:"Blob"`
	} `xml:"Blobs"`
}

// parsePage parses one page's body and returns its objects (keys checked
// against prefix and made relative to it), the next page's token ("" when
// this was the last page) and how many keys it skipped because they are
// not valid UTF-8 (JSON cannot carry them unchanged).
func parsePage(body []byte, prefix string) (objs []Object, next string, skipped int, err error) {
	if n, err := countEntries(body); err != nil {
		return nil, "", 0, errors.New("list: the store's answer is not a listing (XML does not parse)")
	} else if n > maxPageEntries {
		return nil, "", 0, fmt.Errorf("list: a page of more than %d objects", maxPageEntries)
	}
	var x listXML
	dec := xml.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&x); err != nil {
		return nil, "", 0, errors.New("list: the store's answer is not a listing (XML does not parse)")
	}
	switch x.XMLName.Local {
	case "ListBucketResult":
		return parseBucketResult(&x, prefix)
	case "EnumerationResults":
		return parseEnumerationResults(&x, prefix)
	}
	return nil, "", 0, fmt.Errorf("list: the store's answer is a <%.40s>, not a listing", x.XMLName.Local)
}

// countEntries counts the <Contents> and <Blob> elements of a page with
// the tokenizer alone: what it allocates is garbage at once, not a
// decoded entry per element.
func countEntries(body []byte) (int, error) {
	dec := xml.NewDecoder(bytes.NewReader(body))
	n := 0
	for {
		tok, err := dec.RawToken()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		if se, ok := tok.(xml.StartElement); ok && (se.Name.Local == "Contents" || se.Name.Local == "Blob") {
			if n++; n > maxPageEntries {
				return n, nil
			}
		}
	}
}

func parseBucketResult(x *listXML, prefix string) (objs []Object, next string, skipped int, err error) {
	encoded := false
	switch x.EncodingType {
	case "":
	case "url":
		encoded = true
	default:
		return nil, "", 0, fmt.Errorf("list: unknown EncodingType %.20q", x.EncodingType)
	}
	objs = make([]Object, 0, len(x.Contents))
	last := ""
	for i := range x.Contents {
		c := &x.Contents[i]
		key := c.Key
		if encoded {
			// S3 encodes like an HTML form (space as '+', '+' as %2B):
			// botocore decodes these keys with unquote_plus.
			k, err := url.QueryUnescape(key)
			if err != nil {
				return nil, "", 0, fmt.Errorf("list: key %q: bad URL encoding", key)
			}
			key = k
		}
		last = key
		if !utf8.ValidString(key) {
			skipped++
			continue
		}
		o, err := object(prefix, key, c.Size, c.ETag, c.LastModified, time.RFC3339Nano)
		if err != nil {
			return nil, "", 0, err
		}
		objs = append(objs, o)
	}
	if !x.IsTruncated {
		return objs, "", skipped, nil
	}
	next = x.NextContinuationToken
	if next == "" {
		next = x.NextMarker
	}
	if next == "" {
		// V1 without NextMarker (S3 gives it only with a delimiter):
		// the marker is the last key, as stored.
		next = last
	}
	if next == "" {
		return nil, "", 0, errors.New("list: a truncated page with no continuation token")
	}
	return objs, next, skipped, nil
}

func parseEnumerationResults(x *listXML, prefix string) (objs []Object, next string, skipped int, err error) {
	objs = make([]Object, 0, len(x.Blobs.Blob))
	for i := range x.Blobs.Blob {
		b := &x.Blobs.Blob[i]
		if b.Properties.ResourceType == "directory" {
			continue // a hierarchical-namespace directory, not a blob
		}
		name := b.Name.Value
		if b.Name.Encoded {
			// Names holding characters XML cannot carry come percent-encoded.
			n, err := url.PathUnescape(name)
			if err != nil {
				return nil, "", 0, fmt.Errorf("list: blob name %q: bad URL encoding", name)
			}
			name = n
		}
		if !utf8.ValidString(name) {
			skipped++
			continue
		}
		etag := b.Properties.Etag
		if etag != "" && !strings.HasPrefix(etag, `"`) {
			etag = `"` + etag + `"`
		}
		o, err := object(prefix, name, b.Properties.ContentLength, etag, b.Properties.LastModified, http.TimeFormat)
		if err != nil {
			return nil, "", 0, err
		}
		objs = append(objs, o)
	}
	return objs, x.NextMarker, skipped, nil
}

// object builds one Object, refusing a key outside prefix: the store was
// asked for prefix= only, so one would be a store bug, and a manifest
// must never name what the source cannot serve.
func object(prefix, key string, size int64, etag, modified, layout string) (Object, error) {
	rel, ok := strings.CutPrefix(key, prefix)
	if !ok {
		return Object{}, fmt.Errorf("list: the store listed %q, outside the prefix %q", key, prefix)
	}
	if size < 0 {
		return Object{}, fmt.Errorf("list: %q: negative size", key)
	}
	o := Object{Key: rel, StorageKey: key, Size: size, ETag: etag}
	if modified != "" {
		t, err := time.Parse(layout, modified)
		if err != nil && layout == http.TimeFormat {
			t, err = http.ParseTime(modified)
		}
		if err != nil {
			return Object{}, fmt.Errorf("list: %q: last modified time %.40q does not parse", key, modified)
		}
		o.LastModified = t.UTC()
	}
	return o, nil
}
