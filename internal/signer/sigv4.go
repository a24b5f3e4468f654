package signer

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// SigV4 presigns S3 GET and HEAD URLs (AWS Signature Version 4, query
// form) for one bucket base: written for exactly what the S3 signer asks
// of the SDK's v4.Signer.PresignHTTP (UNSIGNED-PAYLOAD, no path double
// escaping, the host header signed, optionally the three SSE-C headers),
// and byte-identical to it (sigv4_test.go compares the two on random
// inputs). The canonical request and the URL are appended into one pooled
// buffer; the per-day signing key is cached per (secret, date). A
// presign allocates only the returned string.
//
// A SigV4 is safe for concurrent use.
type SigV4 struct {
	// prefix is "scheme://host" + the escaped base path: every URL
	// starts with it; uriStart is where the canonical URI begins in it.
	prefix   string
	uriStart int
	// headers is the canonical headers block, each line ending in '\n',
	// and signed the signed header names joined by ';', query-escaped
	// (in the URL) and plain (in the canonical request): host alone,
	// and with the SSE-C headers when they are signed.
	headers, sseHeaders             string
	signed, sseSigned               string
	signedEscaped, sseSignedEscaped string
	region, service                 string
	sseHeaderValues                 [3]string // algorithm, key, key MD5
	key                             atomic.Pointer[sigv4Key]
	// date is the last X-Amz-Date formatted: callers sign at the start
	// of a signing window, so one instant serves a window's URLs, and
	// formatting it was a fifth of a presign.
	date    atomic.Pointer[sigv4Date]
	lastSec atomic.Int64 // the instant of the last date formatted
}

// sigv4Date is one signing instant (Unix seconds) as X-Amz-Date.
type sigv4Date struct {
	sec int64
	amz [len(amzDateFormat)]byte
}

// SigV4Config is one bucket base: Path is the unescaped URL path every
// key follows ("/" for virtual-hosted, "/BUCKET/" path-style, after an
// endpoint's own base path); Host as in the URL, port included.
type SigV4Config struct {
	Scheme, Host, Path string
	Region             string
	// SSECKey and SSECKeyMD5 (base64) are signed as headers when a
	// request asks for SSE-C.
	SSECKey, SSECKeyMD5 string
}

// SigV4Request is one URL to sign.
type SigV4Request struct {
	Method string // GET or HEAD, as sent
	Key    string // the object key, unescaped
	At     time.Time
	// Expires is X-Amz-Expires in seconds.
	Expires int64
	// AccessKeyID, SecretAccessKey and SessionToken (may be empty) are
	// the credentials.
	AccessKeyID, SecretAccessKey, SessionToken string
	// SSEC signs the SSE-C headers (they must then be sent).
	SSEC bool
}

// sigv4Key is a derived signing key for one secret and one UTC day, with
// its HMAC pads.
type sigv4Key struct {
	secret     string
	y, m, d    int
	ipad, opad [sha256.BlockSize]byte
}

const (
	sigv4Algorithm = "AWS4-HMAC-SHA256"
	unsignedBody   = "UNSIGNED-PAYLOAD"
	amzDateFormat  = "20060102T150405Z"
	sseAlgorithmH  = "x-amz-server-side-encryption-customer-algorithm"
	sseKeyH        = "x-amz-server-side-encryption-customer-key"
	sseKeyMD5H     = "x-amz-server-side-encryption-customer-key-md5"
)

// NewSigV4 prepares a presigner for one bucket base and region (service s3).
func NewSigV4(c SigV4Config) *SigV4 {
	u := url.URL{Scheme: c.Scheme, Host: c.Host, Path: c.Path, RawPath: EscapePath(c.Path)}
	prefix := u.String()
	s := &SigV4{
		prefix:   prefix,
		uriStart: len(prefix) - len(u.EscapedPath()),
		region:   c.Region,
		service:  "s3",
	}
	// The SDK signs the request's Host with a default port stripped and
	// excess spaces removed, while the URL keeps the host as given.
	host := c.Host
	if port := sigv4PortOnly(host); port != "" && (strings.EqualFold(c.Scheme, "http") && port == "80" || strings.EqualFold(c.Scheme, "https") && port == "443") {
		host = sigv4StripPort(host)
	}
	s.headers = "host:" + stripExcessSpaces(host) + "\n"
	s.signed = "host"
	s.sseSigned = "host;" + sseAlgorithmH + ";" + sseKeyH + ";" + sseKeyMD5H
	s.sseHeaderValues = [3]string{"AES256", c.SSECKey, c.SSECKeyMD5}
	s.sseHeaders = s.headers +
		sseAlgorithmH + ":AES256\n" +
		sseKeyH + ":" + strings.TrimSpace(stripExcessSpaces(c.SSECKey)) + "\n" +
		sseKeyMD5H + ":" + strings.TrimSpace(stripExcessSpaces(c.SSECKeyMD5)) + "\n"
	s.signedEscaped = string(appendEscaped(nil, s.signed, false))
	s.sseSignedEscaped = string(appendEscaped(nil, s.sseSigned, false))
	return s
}

// sigv4Buf is the pooled scratch space of one presign.
type sigv4Buf struct {
	out   []byte // the URL
	canon []byte // the canonical request, then the HMAC inputs
}

var sigv4Bufs = sync.Pool{New: func() any {
	return &sigv4Buf{out: make([]byte, 0, 1024), canon: make([]byte, 0, 1024)}
}}

// Presign returns the presigned URL.
func (s *SigV4) Presign(r *SigV4Request) string {
	b := sigv4Bufs.Get().(*sigv4Buf)
	at := r.At.UTC()
	var amzDate []byte
	if d := s.date.Load(); d != nil && d.sec == at.Unix() {
		amzDate = d.amz[:]
	} else {
		var buf [len(amzDateFormat)]byte
		amzDate = at.AppendFormat(buf[:0], amzDateFormat)
		// Kept when the instant comes a second time in a row (a signing
		// window's), so that signing at a new instant every time costs
		// no allocation either. A year past 9999 does not fit.
		if sec := at.Unix(); s.lastSec.Swap(sec) == sec && len(amzDate) == len(buf) {
			s.date.Store(&sigv4Date{sec: sec, amz: buf})
		}
	}
	day := amzDate[:8]

	headers, signed, signedEsc := s.headers, s.signed, s.signedEscaped
	if r.SSEC {
		headers, signed, signedEsc = s.sseHeaders, s.sseSigned, s.sseSignedEscaped
	}

	// The URL: prefix, escaped key, and the query in canonical order
	// (keys sorted, values escaped as url.QueryEscape with %20).
	out := append(b.out[:0], s.prefix...)
	out = appendEscaped(out, r.Key, true)
	uriEnd := len(out)
	out = append(out, "?X-Amz-Algorithm="+sigv4Algorithm+"&X-Amz-Credential="...)
	out = appendEscaped(out, r.AccessKeyID, false)
	out = append(out, "%2F"...)
	out = append(out, day...)
	out = append(out, "%2F"...)
	out = appendEscaped(out, s.region, false)
	out = append(out, "%2F"...)
	out = appendEscaped(out, s.service, false)
	out = append(out, "%2Faws4_request&X-Amz-Date="...)
	out = append(out, amzDate...)
	out = append(out, "&X-Amz-Expires="...)
	out = strconv.AppendInt(out, r.Expires, 10)
	if r.SessionToken != "" {
		out = append(out, "&X-Amz-Security-Token="...)
		out = appendEscaped(out, r.SessionToken, false)
	}
	out = append(out, "&X-Amz-SignedHeaders="...)
	out = append(out, signedEsc...)

	// The canonical request, hashed.
	c := append(b.canon[:0], r.Method...)
	c = append(c, '\n')
	c = append(c, out[s.uriStart:uriEnd]...)
	c = append(c, '\n')
	c = append(c, out[uriEnd+1:]...)
	c = append(c, '\n')
	c = append(c, headers...)
	c = append(c, '\n')
	c = append(c, signed...)
	c = append(c, "\n"+unsignedBody...)
	canonSum := sha256.Sum256(c)

	// The string to sign, HMAC'd with the day's key: SHA-256 over the
	// pads by hand, so nothing escapes to the heap.
	k := s.signingKey(r.SecretAccessKey, at)
	c = append(c[:0], k.ipad[:]...)
	c = append(c, sigv4Algorithm+"\n"...)
	c = append(c, amzDate...)
	c = append(c, '\n')
	c = append(c, day...)
	c = append(c, '/')
	c = append(c, s.region...)
	c = append(c, '/')
	c = append(c, s.service...)
	c = append(c, "/aws4_request\n"...)
	c = hex.AppendEncode(c, canonSum[:])
	inner := sha256.Sum256(c)
	c = append(c[:0], k.opad[:]...)
	c = append(c, inner[:]...)
	sig := sha256.Sum256(c)

	out = append(out, "&X-Amz-Signature="...)
	out = hex.AppendEncode(out, sig[:])
	u := string(out)
	b.out, b.canon = out, c
	if cap(b.out) <= 64<<10 && cap(b.canon) <= 64<<10 {
		sigv4Bufs.Put(b)
	}
	return u
}

// SSECHeaders returns the SSE-C headers a request signed with SSEC must
// carry, in canonical MIME form, as the SDK returns them.
func (s *SigV4) SSECHeaders() map[string][]string {
	return map[string][]string{
		"X-Amz-Server-Side-Encryption-Customer-Algorithm": {s.sseHeaderValues[0]},
		"X-Amz-Server-Side-Encryption-Customer-Key":       {s.sseHeaderValues[1]},
		"X-Amz-Server-Side-Encryption-Customer-Key-Md5":   {s.sseHeaderValues[2]},
	}
}

// signingKey returns the key for secret on at's UTC day, derived once per
// day (and per secret: rotated credentials get their own).
func (s *SigV4) signingKey(secret string, at time.Time) *sigv4Key {
	y, m, d := at.Date()
	if k := s.key.Load(); k != nil && k.d == d && k.m == int(m) && k.y == y && k.secret == secret {
		return k
	}
	date := at.Format("20060102")
	kDate := hmacSHA256([]byte("AWS4"+secret), date)
	kRegion := hmacSHA256(kDate, s.region)
	kService := hmacSHA256(kRegion, s.service)
	key := hmacSHA256(kService, "aws4_request")
	k := &sigv4Key{secret: secret, y: y, m: int(m), d: d}
	// key is 32 bytes, shorter than a block: the pads take it as is.
	for i := range k.ipad {
		var c byte
		if i < len(key) {
			c = key[i]
		}
		k.ipad[i], k.opad[i] = c^0x36, c^0x5c
	}
	s.key.Store(k)
	return k
}

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}

// stripExcessSpaces is the SDK's: trim spaces at both ends, and collapse
// runs of spaces inside into one.
func stripExcessSpaces(s string) string {
	s = strings.Trim(s, " ")
	if !strings.Contains(s, "  ") {
		return s
	}
	var b strings.Builder
	space := false
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' {
			if space {
				continue
			}
			space = true
		} else {
			space = false
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// sigv4PortOnly and sigv4StripPort are the SDK's (aws/signer/internal/v4/host.go).
func sigv4PortOnly(hostport string) string {
	colon := strings.IndexByte(hostport, ':')
	if colon == -1 {
		return ""
	}
	if i := strings.Index(hostport, "]:"); i != -1 {
		return hostport[i+len("]:"):]
	}
	if strings.Contains(hostport, "]") {
		return ""
	}
	return hostport[colon+len(":"):]
}

func sigv4StripPort(hostport string) string {
	colon := strings.IndexByte(hostport, ':')
	if colon == -1 {
		return hostport
	}
	if i := strings.IndexByte(hostport, ']'); i != -1 {
		return strings.TrimPrefix(hostport[:i], "[")
	}
	return hostport[:colon]
}
