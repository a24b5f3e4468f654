package auth

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// errShape refuses a token whose header or claims are not written as the
// issuer must write them (PRODUCT.md, "The token"): member names are
// case-sensitive, no member is duplicated at any level, the header has no
// crit, exp is a JSON number (nbf and iat too when present), and every grant
// carries both source and prefix as strings. It wraps jwt.ErrTokenMalformed,
// so the public code is token_malformed. Its texts name members, never
// values.
var errShape = fmt.Errorf("%w: the token's header or claims are not written as required", jwt.ErrTokenMalformed)

func shapeErr(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errShape}, a...)...)
}

// checkHeader refuses a token whose header segment decodes to a JSON object
// with a duplicated member (at any depth) or a crit member. A header that
// does not decode, or is not JSON, is left to the jwt parser, which refuses
// it as malformed; so is one that is not an object.
func checkHeader(token string) error {
	seg, _, ok := strings.Cut(token, ".")
	if !ok {
		return nil
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(seg)
	if err != nil || !json.Valid(b) {
		return nil
	}
	if !utf8.Valid(b) {
		return shapeErr("the header is not UTF-8")
	}
	d := strictDecoder{b: b}
	d.ws()
	if d.peek() != '{' {
		return nil
	}
	var it members
	d.open(&it, '{')
	for {
		name, more, err := d.member(&it)
		if err != nil || !more {
			return err
		}
		if string(name) == "crit" {
			// RFC 7515 section 4.1.11: the edge understands no extension,
			// so a token that requires one is refused.
			return shapeErr("the header has crit")
		}
		if err := d.skip(1); err != nil {
			return err
		}
	}
}

// UnmarshalJSON decodes the claims exactly as the issuer wrote them, where
// encoding/json matches member names case-insensitively and keeps the last
// of duplicated members: a name is matched case-sensitively, so "EXP",
// "GRANTS" or "Prefix" are unknown members and ignored; a duplicated
// member anywhere refuses the claims; exp, nbf and iat must be JSON numbers
// (a string such as "9999999999", or null, is refused); iss, sub and jti
// strings; aud a string or a list of strings; grants a list of objects.
// iss, sub, jti, aud and grants may be null, read as absent. exp being
// present is checked by the jwt validator (code token_invalid), as before.
// Strings must be UTF-8.
//
// Every grant must carry both source and prefix, as strings. A grant
// without prefix refuses the whole token rather than being dropped:
// PRODUCT.md says every grant must carry both, so such a token was not
// written by a conforming issuer, and refusing it says so at once instead
// of answering 403 on every request it makes. Prefix "" covers the whole
// source.
func (c *Claims) UnmarshalJSON(b []byte) error {
	*c = Claims{}
	if !utf8.Valid(b) {
		return shapeErr("the claims are not UTF-8")
	}
	d := strictDecoder{b: b}
	d.ws()
	if d.peek() != '{' {
		return shapeErr("the claims are not an object")
	}
	var it members
	d.open(&it, '{')
	for {
		name, more, err := d.member(&it)
		if err != nil || !more {
			return err
		}
		switch string(name) {
		case "exp":
			c.ExpiresAt, err = d.numericDate("exp")
		case "nbf":
			c.NotBefore, err = d.numericDate("nbf")
		case "iat":
			c.IssuedAt, err = d.numericDate("iat")
		case "iss":
			c.Issuer, err = d.optStr("iss")
		case "sub":
			c.Subject, err = d.optStr("sub")
		case "jti":
			c.ID, err = d.optStr("jti")
		case "aud":
			err = d.audience(&c.Audience)
		case "grants":
			c.Grants, err = d.grants()
		default:
			err = d.skip(1)
		}
		if err != nil {
			return err
		}
	}
}

// maxDepth bounds nesting; encoding/json's own limit is 10000.
const maxDepth = 10000

// strictDecoder walks one JSON value held whole in b. Its input has been
// checked by json.Valid (or json.Unmarshal) first, but it checks what it
// relies on, so malformed input is an error, never a panic. It allocates
// only for escaped strings, for the values it returns, and for objects of
// more than len(members.buf) members.
type strictDecoder struct {
	b []byte
	i int
}

// members is the state of one object or array walk: whether the next
// member is the first, and the member names seen so far.
type members struct {
	started bool
	close   byte
	n       int
	buf     [12][]byte
	m       map[string]struct{}
}

var errSyntax = shapeErr("invalid JSON")

func (d *strictDecoder) peek() byte {
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

func (d *strictDecoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// open starts walking the object ('{') or array ('[') at d.i, which the
// caller has checked starts with delim.
func (d *strictDecoder) open(it *members, delim byte) {
	d.i++
	it.close = delim + 2 // '}' or ']'
}

// more reports whether the walk has another member or element, consuming
// the separator before it or the closing delimiter after the last.
func (d *strictDecoder) more(it *members) (bool, error) {
	d.ws()
	if d.peek() == it.close {
		if it.started && d.b[d.i-1] == ',' {
			return false, errSyntax
		}
		d.i++
		return false, nil
	}
	if it.started {
		if d.peek() != ',' {
			return false, errSyntax
		}
		d.i++
		d.ws()
	}
	it.started = true
	if d.i >= len(d.b) {
		return false, errSyntax
	}
	return true, nil
}

// member reads the next member name of an object walk, leaving d.i at its
// value, which the caller must consume. A name seen before in this object
// (after unescaping) is an error.
func (d *strictDecoder) member(it *members) (name []byte, more bool, err error) {
	if more, err = d.more(it); !more || err != nil {
		return nil, more, err
	}
	if name, err = d.rawString(); err != nil {
		return nil, false, err
	}
	if it.m != nil {
		if _, dup := it.m[string(name)]; dup {
			return nil, false, shapeErr("a member is duplicated")
		}
		it.m[string(name)] = struct{}{}
	} else {
		// Claims and grants have a handful of members: a list compares
		// faster than a map builds.
		for _, s := range it.buf[:it.n] {
			if string(s) == string(name) {
				return nil, false, shapeErr("a member is duplicated")
			}
		}
		if it.n < len(it.buf) {
			it.buf[it.n] = name
			it.n++
		} else {
			it.m = make(map[string]struct{}, 2*len(it.buf))
			for _, s := range it.buf {
				it.m[string(s)] = struct{}{}
			}
			it.m[string(name)] = struct{}{}
		}
	}
	d.ws()
	if d.peek() != ':' {
		return nil, false, errSyntax
	}
	d.i++
	d.ws()
	return name, true, nil
}

// rawString reads a string at d.i and returns it unescaped: a slice of the
// input when it holds no escape.
func (d *strictDecoder) rawString() ([]byte, error) {
	start, end, escaped, err := d.stringSpan()
	if err != nil {
		return nil, err
	}
	if !escaped {
		return d.b[start+1 : end-1], nil
	}
	var s string
	if err := json.Unmarshal(d.b[start:end], &s); err != nil {
		return nil, errSyntax
	}
	return []byte(s), nil
}

// stringSpan skips a string at d.i, returning its span with the quotes.
func (d *strictDecoder) stringSpan() (start, end int, escaped bool, err error) {
	if d.peek() != '"' {
		return 0, 0, false, errSyntax
	}
	start = d.i
	for j := d.i + 1; j < len(d.b); j++ {
		switch d.b[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			d.i = j + 1
			return start, d.i, escaped, nil
		}
	}
	return 0, 0, false, errSyntax
}

// str reads a member's value that must be a string.
func (d *strictDecoder) str(name string) (string, error) {
	if d.peek() != '"' {
		return "", shapeErr("%s is not a string", name)
	}
	b, err := d.rawString()
	return string(b), err
}

// optStr reads a member's value that must be a string or null (absent).
func (d *strictDecoder) optStr(name string) (string, error) {
	if d.literal("null") {
		return "", nil
	}
	return d.str(name)
}

// number consumes a number at d.i and returns its text.
func (d *strictDecoder) number() []byte {
	start := d.i
	for d.i < len(d.b) {
		c := d.b[d.i]
		if (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			d.i++
			continue
		}
		break
	}
	return d.b[start:d.i]
}

// maxNumericDate is 9999-12-31T23:59:59Z in Unix seconds: no issuer
// means a date past it.
const maxNumericDate = 253402300799

// numericDate reads a member's value that must be a JSON number, as
// jwt.NumericDate reads one (seconds, fractions kept to TimePrecision).
func (d *strictDecoder) numericDate(name string) (*jwt.NumericDate, error) {
	if c := d.peek(); c != '-' && (c < '0' || c > '9') {
		return nil, shapeErr("%s is not a number", name)
	}
	f, err := strconv.ParseFloat(string(d.number()), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) || math.Abs(f) > maxNumericDate {
		// Out of range (1e400) or not a number after all; or past
		// year 9999, where int64 seconds (1e19) would wrap and an nbf
		// or iat in the far future read as the far past.
		return nil, shapeErr("%s is not a usable number", name)
	}
	round, frac := math.Modf(f)
	return jwt.NewNumericDate(time.Unix(int64(round), int64(frac*1e9))), nil
}

// audience reads aud: a string, a list of strings, or null (absent).
func (d *strictDecoder) audience(aud *jwt.ClaimStrings) error {
	switch d.peek() {
	case 'n':
		if d.literal("null") {
			return nil
		}
	case '"':
		s, err := d.str("aud")
		if err != nil {
			return err
		}
		*aud = jwt.ClaimStrings{s}
		return nil
	case '[':
		list := jwt.ClaimStrings{}
		var it members
		d.open(&it, '[')
		for {
			more, err := d.more(&it)
			if err != nil {
				return err
			}
			if !more {
				*aud = list
				return nil
			}
			s, err := d.str("an aud entry")
			if err != nil {
				return err
			}
			list = append(list, s)
		}
	}
	return shapeErr("aud is not a string or a list of strings")
}

// grants reads the grants list (null: no grants).
func (d *strictDecoder) grants() ([]Grant, error) {
	if d.literal("null") {
		return nil, nil
	}
	if d.peek() != '[' {
		return nil, shapeErr("grants is not a list")
	}
	var gs []Grant
	var list members
	d.open(&list, '[')
	for {
		more, err := d.more(&list)
		if err != nil || !more {
			return gs, err
		}
		if d.peek() != '{' {
			return nil, shapeErr("a grant is not an object")
		}
		var g Grant
		var hasSource, hasPrefix bool
		var it members
		d.open(&it, '{')
		for {
			name, more, err := d.member(&it)
			if err != nil {
				return nil, err
			}
			if !more {
				break
			}
			switch string(name) {
			case "source":
				g.Source, err = d.str("a grant's source")
				hasSource = true
			case "prefix":
				g.Prefix, err = d.str("a grant's prefix")
				hasPrefix = true
			default:
				err = d.skip(3)
			}
			if err != nil {
				return nil, err
			}
		}
		if !hasSource || !hasPrefix {
			return nil, shapeErr("a grant lacks source or prefix")
		}
		gs = append(gs, g)
	}
}

// literal consumes lit at d.i when it is there.
func (d *strictDecoder) literal(lit string) bool {
	if len(d.b)-d.i >= len(lit) && string(d.b[d.i:d.i+len(lit)]) == lit {
		d.i += len(lit)
		return true
	}
	return false
}

// skip consumes any value at d.i, refusing duplicated members in every
// object inside it. depth is the nesting of the value.
func (d *strictDecoder) skip(depth int) error {
	if depth > maxDepth {
		return shapeErr("nested too deep")
	}
	switch c := d.peek(); {
	case c == '{':
		var it members
		d.open(&it, '{')
		for {
			_, more, err := d.member(&it)
			if err != nil || !more {
				return err
			}
			if err := d.skip(depth + 1); err != nil {
				return err
			}
		}
	case c == '[':
		var it members
		d.open(&it, '[')
		for {
			more, err := d.more(&it)
			if err != nil || !more {
				return err
			}
			if err := d.skip(depth + 1); err != nil {
				return err
			}
		}
	case c == '"':
		_, _, _, err := d.stringSpan()
		return err
	case c == 't':
		if d.literal("true") {
			return nil
		}
	case c == 'f':
		if d.literal("false") {
			return nil
		}
	case c == 'n':
		if d.literal("null") {
			return nil
		}
	case c == '-' || (c >= '0' && c <= '9'):
		d.number()
		return nil
	}
	return errSyntax
}
