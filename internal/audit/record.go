package audit

import (
	"github.com/edgeproxy/edge/internal/jsonstr"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Record is what the audit trail keeps of one object request (/v1/s, /v1/u,
// /v1/f), whatever its outcome: who (subject, issuer, token id, client
// address) asked for what (source, key), how (mode, method) and what they
// got (status, bytes). It never holds a token, cookie or signature: there
// is no field for one.
//
// Record is a plain value. Enqueue copies it; the caller may reuse it at
// once. Method, Source and Key may be substrings of the request line
// (which holds the token when it came in the query): Enqueue copies their
// bytes, so nothing queued keeps the request line alive. The other strings
// must not point into it.
type Record struct {
	Time      time.Time
	RequestID string
	Subject   string
	Issuer    string
	TokenID   string // the token's jti
	Source    string
	Key       string // relative to the source's prefix, as /v1/s/SOURCE/KEY names it
	Mode      string // redirect | stream
	Method    string
	Status    int
	Bytes     int64
	ClientIP  netip.Addr
}

// arenaSize is how many bytes of Method, Source and Key an entry holds
// inline. Longer ones are cloned (one allocation).
const arenaSize = 240

// entry is a Record as queued: Method, Source and Key copied into the
// entry itself, so queueing neither allocates nor pins the request line.
type entry struct {
	rec                 Record // Method, Source and Key cleared when inline
	methodN, srcN, keyN uint16 // lengths in arena; 0 with the string set when cloned
	arena               [arenaSize]byte
}

// commonMethods are returned as constants, so a Method string never needs
// a copy.
var commonMethods = [...]string{"GET", "HEAD", "POST", "OPTIONS", "PUT", "DELETE", "PATCH"}

func (e *entry) set(r *Record) {
	e.rec = *r
	e.methodN, e.srcN, e.keyN = 0, 0, 0
	n := 0
	m := r.Method
	for _, c := range commonMethods {
		if m == c {
			e.rec.Method = c
			m = ""
			break
		}
	}
	if m != "" {
		n, e.methodN, e.rec.Method = e.put(n, m)
	}
	n, e.srcN, e.rec.Source = e.put(n, r.Source)
	_, e.keyN, e.rec.Key = e.put(n, r.Key)
}

// put copies s into the arena at n when it fits (returning its length
// and "" for the field), or clones it (returning 0 and the clone).
func (e *entry) put(n int, s string) (int, uint16, string) {
	if len(s) == 0 {
		return n, 0, ""
	}
	if n+len(s) <= arenaSize {
		copy(e.arena[n:], s)
		return n + len(s), uint16(len(s)), ""
	}
	return n, 0, strings.Clone(s)
}

// appendInline appends the arena's bytes [off, off+n) as a JSON string,
// or s when n is 0.
func (e *entry) appendInline(dst []byte, off, n uint16, s string) []byte {
	if n == 0 {
		return jsonstr.Append(dst, s)
	}
	return jsonstr.Append(dst, e.arena[off:off+n])
}

// AppendJSON appends r as one JSON object and a newline: the audit line.
// Fields come in a fixed order and are always present ("" or 0 when
// unknown, client_ip "" when there is none); strings are escaped as JSON
// requires (quotes, backslashes, control characters) and invalid UTF-8
// becomes U+FFFD, so any key round-trips through a JSON decoder.
func AppendJSON(dst []byte, r *Record) []byte {
	var e entry
	e.rec = *r
	return e.appendJSON(dst, time.Time{})
}

func (e *entry) appendJSON(dst []byte, now time.Time) []byte {
	r := &e.rec
	t := r.Time
	if t.IsZero() {
		t = now
	}
	dst = append(dst, `{"time":"`...)
	dst = t.UTC().AppendFormat(dst, "2006-01-02T15:04:05.000Z07:00")
	dst = append(dst, `","request_id":`...)
	dst = jsonstr.Append(dst, r.RequestID)
	dst = append(dst, `,"subject":`...)
	dst = jsonstr.Append(dst, r.Subject)
	dst = append(dst, `,"issuer":`...)
	dst = jsonstr.Append(dst, r.Issuer)
	dst = append(dst, `,"token_id":`...)
	dst = jsonstr.Append(dst, r.TokenID)
	dst = append(dst, `,"source":`...)
	dst = e.appendInline(dst, e.methodN, e.srcN, r.Source)
	dst = append(dst, `,"key":`...)
	dst = e.appendInline(dst, e.methodN+e.srcN, e.keyN, r.Key)
	dst = append(dst, `,"mode":`...)
	dst = jsonstr.Append(dst, r.Mode)
	dst = append(dst, `,"method":`...)
	dst = e.appendInline(dst, 0, e.methodN, r.Method)
	dst = append(dst, `,"status":`...)
	dst = strconv.AppendInt(dst, int64(r.Status), 10)
	dst = append(dst, `,"bytes":`...)
	dst = strconv.AppendInt(dst, r.Bytes, 10)
	dst = append(dst, `,"client_ip":"`...)
	if r.ClientIP.IsValid() {
		dst = r.ClientIP.AppendTo(dst)
	}
	dst = append(dst, "\"}\n"...)
	return dst
}
