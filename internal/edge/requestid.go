package edge

import (
	"crypto/rand"
	"encoding/base32"
	"net/http"
	"sync"
	"sync/atomic"
)

// Request ids: "PREFIX-COUNTER", a random per-process prefix (so replicas
// and restarts never collide) and a counter in fixed-width hex. They are
// made in blocks of idBlockSize, two allocations per block (the text and
// the header values), so a request costs no allocation of its own: the
// header value is a slice into the block, which net/http never modifies.
const (
	idBlockSize = 256
	idPrefixLen = 8
	idLen       = idPrefixLen + 1 + 12
)

// maxRequestIDLen bounds a trusted proxy's X-Request-Id.
const maxRequestIDLen = 128

type idGen struct {
	prefix [idPrefixLen]byte
	next   atomic.Uint64 // the first counter of the next block
	blocks sync.Pool     // *idBlock, per P: no lock between cores
}

type idBlock struct {
	text string
	vals [idBlockSize][1]string
	used int
}

func (g *idGen) init() error {
	var b [5]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding).Encode(g.prefix[:], b[:])
	return nil
}

const hexDigits = "0123456789abcdef"

func (g *idGen) newBlock() *idBlock {
	first := g.next.Add(idBlockSize) - idBlockSize
	buf := make([]byte, 0, idBlockSize*idLen)
	for i := range uint64(idBlockSize) {
		n := first + i
		buf = append(buf, g.prefix[:]...)
		buf = append(buf, '-')
		for shift := 44; shift >= 0; shift -= 4 {
			buf = append(buf, hexDigits[(n>>uint(shift))&0xf])
		}
	}
	blk := &idBlock{text: string(buf)}
	for i := range blk.vals {
		blk.vals[i][0] = blk.text[i*idLen : (i+1)*idLen]
	}
	return blk
}

// get returns a fresh id as a header value (one element).
func (g *idGen) get() []string {
	blk, _ := g.blocks.Get().(*idBlock)
	if blk == nil || blk.used == idBlockSize {
		blk = g.newBlock()
	}
	v := blk.vals[blk.used][:]
	blk.used++
	g.blocks.Put(blk)
	return v
}

// requestID sets the request's id on the answer (X-Request-Id) and
// returns it: a trusted proxy's own id when it sent a well-formed one,
// else a fresh one.
func (s *Server) requestID(w http.ResponseWriter, r *http.Request) string {
	v := s.ids.get()
	if s.proxies != nil {
		if in := r.Header["X-Request-Id"]; len(in) == 1 && validRequestID(in[0]) && s.proxies.PeerTrusted(r) {
			v = in
		}
	}
	w.Header()["X-Request-Id"] = v
	return v[0]
}

// validRequestID accepts 1-128 visible ASCII characters that need no
// escaping in a log line or JSON: letters, digits and -_.:/+=@.
func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':' || c == '/' || c == '+' || c == '=' || c == '@') {
			return false
		}
	}
	return true
}

// RequestID returns the id of the request being answered on w: the
// X-Request-Id the edge set on the answer before any handler ran (so an
// Options.Extra handler, or an audit record written when the request
// finishes, reads the same id as the access log).
func RequestID(w http.ResponseWriter) string {
	if v := w.Header()["X-Request-Id"]; len(v) > 0 {
		return v[0]
	}
	return ""
}
