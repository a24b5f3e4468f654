package signer

import (
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// GCS V4 signing constants, from
// https://cloud.google.com/storage/docs/access-control/signed-urls#example
// and https://cloud.google.com/storage/docs/authentication/canonical-requests.
const (
	gcsDefaultEndpoint  = "https://storage.googleapis.com"
	gcsAlgorithm        = "GOOG4-RSA-SHA256"
	gcsScopeSuffix      = "/auto/storage/goog4_request"
	gcsUnsignedPayload  = "UNSIGNED-PAYLOAD"
	gcsTimeFormat       = "20060102T150405Z"
	gcsContentSHA256    = "x-goog-content-sha256"
	gcsSignatureParam   = "&X-Goog-Signature="
	gcsMaxExpiresSecond = int64(MaxTTL / time.Second)
)

// gcsURLStyle says how a GCS URL names its bucket.
type gcsURLStyle string

// URL styles.
const (
	// gcsPathStyle puts the bucket in the path:
	// https://storage.googleapis.com/BUCKET/OBJECT. The default.
	gcsPathStyle gcsURLStyle = "path"
	// gcsVirtualHostedStyle puts the bucket in the host name:
	// https://BUCKET.storage.googleapis.com/OBJECT (addressing: virtual).
	gcsVirtualHostedStyle gcsURLStyle = "virtual"
	// gcsBucketBoundHostname means the endpoint serves the bucket itself (a
	// CNAME or a load balancer in front of it): https://cdn.example.com/OBJECT.
	// No config key selects it; the conformance vectors use it.
	gcsBucketBoundHostname gcsURLStyle = "bucket_bound"
)

// gcsOptions override the URL style and endpoint the config implies (the
// conformance vectors' client settings).
type gcsOptions struct {
	endpoint string      // scheme://host[:port]; empty: cfg.Endpoint, then storage.googleapis.com
	style    gcsURLStyle // empty: virtual for addressing virtual, else path
}

// GCS presigns Google Cloud Storage V4 URLs (GOOG4-RSA-SHA256) with a
// service-account key.
//
// It is written by hand rather than calling cloud.google.com/go/storage's
// SignedURL because that reads the wall clock itself, with no way to set the
// signing time, while the edge signs at a window start (Request.At) so that
// the same inputs always give byte-identical URLs; and because it would pull
// gRPC and a large dependency tree into a small binary.
type GCS struct {
	key *rsa.PrivateKey

	// Precomputed pieces of every URL and canonical request.
	urlBase    string // "https://storage.googleapis.com": scheme and authority, port kept
	pathBase   string // "/BUCKET" in path style, "" when the host names the bucket
	hostLine   string // "host:storage.googleapis.com\n": the host without its port
	signHost   string // the host header value that is signed
	credPrefix string // "X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Credential=EMAIL%2F"
	credEmail  string // the escaped client email, for the general query path
}

var _ Signer = (*GCS)(nil)

// NewGCS parses the service-account key named by cfg.Credentials (KeyFile or
// KeyJSON; the private key in PKCS#8 or PKCS#1 PEM) once, so that Presign
// never touches the key material again. cfg must have passed Validate.
// Errors name the config key at fault and never quote the key.
func NewGCS(cfg Config) (*GCS, error) { return newGCS(cfg, gcsOptions{}) }

func newGCS(cfg Config, opts gcsOptions) (*GCS, error) {
	email, key, err := gcsLoadKey(cfg.Credentials)
	if err != nil {
		return nil, err
	}

	style := opts.style
	if style == "" {
		style = gcsPathStyle
		if cfg.Addressing == "virtual" {
			style = gcsVirtualHostedStyle
		}
	}
	endpoint := opts.endpoint
	if endpoint == "" {
		endpoint = cfg.Endpoint
	}
	if endpoint == "" {
		endpoint = gcsDefaultEndpoint
	}
	u, err := url.Parse(endpoint) // checked by Validate
	if err != nil || u.Host == "" {
		return nil, errors.New("gcs: endpoint: want an absolute http(s) URL")
	}
	authority, host := u.Host, u.Hostname()

	g := &GCS{key: key}
	switch style {
	case gcsPathStyle:
		g.pathBase = "/" + cfg.Bucket
	case gcsVirtualHostedStyle:
		authority, host = cfg.Bucket+"."+authority, cfg.Bucket+"."+host
	case gcsBucketBoundHostname:
	}
	g.urlBase = u.Scheme + "://" + authority
	// Google's clients sign the host without its port (url.URL.Hostname), and
	// the conformance vectors "Simple GET with non-default hostname" and
	// "Simple GET with endpoint on client" expect exactly that.
	g.signHost = host
	g.hostLine = "host:" + host + "\n"
	g.credEmail = string(appendEscaped(nil, email, false))
	g.credPrefix = "X-Goog-Algorithm=" + gcsAlgorithm + "&X-Goog-Credential=" + g.credEmail + "%2F"
	return g, nil
}

// Presign returns a V4 URL for r.Key, valid for r.Method (GET or HEAD) from
// r.At for r.TTL. Equal requests give byte-identical URLs: the signing time
// is r.At (whole seconds, UTC) and PKCS#1 v1.5 signatures are deterministic.
func (g *GCS) Presign(ctx context.Context, r Request) (Presigned, error) {
	if err := ctx.Err(); err != nil {
		return Presigned{}, err
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return Presigned{}, fmt.Errorf("gcs: method %q cannot be presigned: want GET or HEAD", r.Method)
	}
	if r.Key == "" {
		return Presigned{}, errors.New("gcs: empty object key")
	}
	if r.At.IsZero() {
		return Presigned{}, errors.New("gcs: signing time (Request.At) not set")
	}
	if err := CheckTTL(r.TTL); err != nil {
		return Presigned{}, fmt.Errorf("gcs: %w", err)
	}
	// X-Goog-Expires counts whole seconds from X-Goog-Date, which has no
	// fraction: the URL dies at the signing second plus those seconds.
	secs := int64(r.TTL / time.Second)
	at := r.At.UTC().Truncate(time.Second)
	u, err := g.sign(&gcsV4Request{method: r.Method, object: r.Key, at: at, expires: secs}, nil)
	if err != nil {
		return Presigned{}, err
	}
	return presigned(r, u, at.Add(time.Duration(secs)*time.Second)), nil
}

// gcsV4Request is everything one V4 signature covers besides the source's
// own endpoint, bucket and key.
type gcsV4Request struct {
	method  string
	object  string    // empty: the bucket itself (a listing)
	at      time.Time // UTC, whole seconds
	expires int64     // seconds, 1..604800
	// ext adds signed headers and query parameters. Presign never does;
	// the conformance vectors do (gcs_test.go implements it), so the
	// binary carries only the path the edge signs.
	ext gcsExtension
}

// gcsExtension extends a signature beyond host and the X-Goog-* parameters.
type gcsExtension interface {
	// canonicalHeaders returns the signed-header list, the canonical
	// header block (host included) and the payload hash.
	canonicalHeaders(g *GCS) (signed, block, payload string, err error)
	// canonicalQuery returns the canonical query string, extra
	// parameters merged into the X-Goog-* ones. (Strings, not the
	// caller's buffers: those stay on sign's stack.)
	canonicalQuery(g *GCS, ts string, expires int64, signedHeaders string) (string, error)
}

// gcsTrace receives the intermediate strings of one signature (tests only).
type gcsTrace struct{ canonicalRequest, stringToSign string }

// sign builds the canonical request and string to sign for r, signs it and
// returns the URL. With no extra headers or query parameters it allocates
// only the URL and what crypto/rsa allocates: everything else is built in
// stack buffers.
func (g *GCS) sign(r *gcsV4Request, tr *gcsTrace) (string, error) {
	if r.expires < 1 || r.expires > gcsMaxExpiresSecond {
		return "", fmt.Errorf("gcs: expiry of %ds: want 1 to %d seconds", r.expires, gcsMaxExpiresSecond)
	}
	var tsBuf [len(gcsTimeFormat)]byte
	ts := r.at.AppendFormat(tsBuf[:0], gcsTimeFormat)
	date := ts[:8]

	signedHeaders, headerBlock, payload := "host", g.hostLine, gcsUnsignedPayload
	if r.ext != nil {
		var err error
		if signedHeaders, headerBlock, payload, err = r.ext.canonicalHeaders(g); err != nil {
			return "", err
		}
	}

	// Canonical request: METHOD \n PATH \n QUERY \n HEADERS \n SIGNED \n PAYLOAD.
	// The URL reuses its path and query, so both are encoded once.
	var crBuf [1024]byte
	cr := append(crBuf[:0], r.method...)
	cr = append(cr, '\n')
	pathStart := len(cr)
	cr = append(cr, g.pathBase...)
	if r.object != "" || g.pathBase == "" {
		cr = append(cr, '/')
	}
	cr = appendEscaped(cr, r.object, true)
	pathEnd := len(cr)
	cr = append(cr, '\n')
	queryStart := len(cr)
	if r.ext == nil {
		cr = g.appendQuery(cr, ts, r.expires, signedHeaders)
	} else {
		q, err := r.ext.canonicalQuery(g, string(ts), r.expires, signedHeaders)
		if err != nil {
			return "", err
		}
		cr = append(cr, q...)
	}
	queryEnd := len(cr)
	cr = append(cr, '\n')
	cr = append(cr, headerBlock...)
	cr = append(cr, '\n')
	cr = append(cr, signedHeaders...)
	cr = append(cr, '\n')
	cr = append(cr, payload...)
	crSum := sha256.Sum256(cr)

	var stsBuf [160]byte
	sts := append(stsBuf[:0], gcsAlgorithm+"\n"...)
	sts = append(sts, ts...)
	sts = append(sts, '\n')
	sts = append(sts, date...)
	sts = append(sts, gcsScopeSuffix+"\n"...)
	sts = hex.AppendEncode(sts, crSum[:])
	stsSum := sha256.Sum256(sts)
	if tr != nil {
		tr.canonicalRequest, tr.stringToSign = string(cr), string(sts)
	}

	sig, err := rsa.SignPKCS1v15(nil, g.key, crypto.SHA256, stsSum[:])
	if err != nil {
		return "", fmt.Errorf("gcs: signing failed: %w", err)
	}

	var b strings.Builder
	b.Grow(len(g.urlBase) + (pathEnd - pathStart) + 1 + (queryEnd - queryStart) + len(gcsSignatureParam) + 2*len(sig))
	b.WriteString(g.urlBase)
	b.Write(cr[pathStart:pathEnd])
	b.WriteByte('?')
	b.Write(cr[queryStart:queryEnd])
	b.WriteString(gcsSignatureParam)
	var hexBuf [1024]byte // a 4096-bit signature
	if n := hex.EncodedLen(len(sig)); n <= len(hexBuf) {
		hex.Encode(hexBuf[:n], sig)
		b.Write(hexBuf[:n])
	} else {
		b.WriteString(hex.EncodeToString(sig))
	}
	return b.String(), nil
}

// appendQuery appends the canonical query string of the X-Goog-*
// parameters (their names are already in sorted order), each value escaped.
func (g *GCS) appendQuery(dst, ts []byte, expires int64, signedHeaders string) []byte {
	dst = append(dst, g.credPrefix...)
	dst = append(dst, ts[:8]...)
	dst = append(dst, "%2Fauto%2Fstorage%2Fgoog4_request&X-Goog-Date="...)
	dst = append(dst, ts...)
	dst = append(dst, "&X-Goog-Expires="...)
	dst = strconv.AppendInt(dst, expires, 10)
	dst = append(dst, "&X-Goog-SignedHeaders="...)
	return appendEscaped(dst, signedHeaders, false)
}

// gcsValidBucket reports whether name uses only the characters GCS allows
// in bucket names, so it can stand unescaped in a path or a host name.
func gcsValidBucket(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return name != ""
}

// gcsServiceAccount is the part of a service-account JSON key the signer uses.
type gcsServiceAccount struct {
	Type        string `json:"type"`
	ClientEmail string `json:"client_email"`
	PrivateKey  string `json:"private_key"`
}

// gcsLoadKey reads and parses the service-account key. Its errors name the
// config key and the JSON field at fault, never their contents.
func gcsLoadKey(c Credentials) (email string, key *rsa.PrivateKey, err error) {
	var raw []byte
	src := "credentials.key_json"
	switch {
	case c.KeyFile != "":
		src = "credentials.key_file"
		if raw, err = os.ReadFile(c.KeyFile); err != nil {
			// The cause only: the path is the operator's value.
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return "", nil, fmt.Errorf("gcs: %s: %w", src, err)
		}
	default:
		raw = []byte(c.KeyJSON)
	}

	trimmed := strings.TrimSpace(string(raw))
	if !strings.HasPrefix(trimmed, "{") {
		if src == "credentials.key_json" {
			return "", nil, fmt.Errorf("gcs: %s: not a JSON object (it holds the key itself; use key_file for a path)", src)
		}
		return "", nil, fmt.Errorf("gcs: %s: not a JSON object: want a service-account JSON key", src)
	}
	var sa gcsServiceAccount
	if err := json.Unmarshal([]byte(trimmed), &sa); err != nil {
		// Only the offset or the field name: a json error can quote input.
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			return "", nil, fmt.Errorf("gcs: %s: invalid JSON at byte %d", src, syn.Offset)
		case errors.As(err, &typ):
			return "", nil, fmt.Errorf("gcs: %s: field %s: want a string, got a JSON %s", src, typ.Field, typ.Value)
		}
		return "", nil, fmt.Errorf("gcs: %s: invalid JSON", src)
	}
	if sa.Type != "" && sa.Type != "service_account" {
		return "", nil, fmt.Errorf("gcs: %s: not a service_account key (its type field names another kind)", src)
	}
	if sa.ClientEmail == "" || !strings.Contains(sa.ClientEmail, "@") {
		return "", nil, fmt.Errorf("gcs: %s: client_email missing or not an email address", src)
	}
	if sa.PrivateKey == "" {
		return "", nil, fmt.Errorf("gcs: %s: private_key missing", src)
	}
	if key, err = gcsParseRSAKey(sa.PrivateKey); err != nil {
		return "", nil, fmt.Errorf("gcs: %s: private_key: %w", src, err)
	}
	// Sign once now, so that a key crypto/rsa refuses (too short, say) stops
	// the start rather than every request.
	sum := sha256.Sum256(nil)
	if _, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:]); err != nil {
		return "", nil, fmt.Errorf("gcs: %s: private_key: %d-bit RSA key cannot sign: %w", src, key.N.BitLen(), err)
	}
	return sa.ClientEmail, key, nil
}

// gcsParseRSAKey parses a PEM RSA private key in PKCS#8 ("PRIVATE KEY", what
// Google issues) or PKCS#1 ("RSA PRIVATE KEY"). Its errors quote no key bytes:
// the x509 and asn1 errors are replaced by what went wrong in words.
func gcsParseRSAKey(s string) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, errors.New("no PEM block (want -----BEGIN PRIVATE KEY-----)")
	}
	switch block.Type {
	case "PRIVATE KEY", "RSA PRIVATE KEY":
	case "ENCRYPTED PRIVATE KEY":
		return nil, errors.New("encrypted PEM keys are not supported: want the key as Google issues it")
	default:
		return nil, fmt.Errorf("PEM block %q is not an RSA private key", block.Type)
	}
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		switch k := k.(type) {
		case *rsa.PrivateKey:
			return k, nil
		case *ecdsa.PrivateKey:
			return nil, errors.New("an ECDSA key: GOOG4-RSA-SHA256 needs an RSA key")
		case ed25519.PrivateKey:
			return nil, errors.New("an Ed25519 key: GOOG4-RSA-SHA256 needs an RSA key")
		case *ecdh.PrivateKey:
			return nil, errors.New("an ECDH key: GOOG4-RSA-SHA256 needs an RSA key")
		default:
			return nil, errors.New("not an RSA key: GOOG4-RSA-SHA256 needs one")
		}
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	return nil, fmt.Errorf("PEM block %q holds no valid PKCS#8 or PKCS#1 RSA key", block.Type)
}
