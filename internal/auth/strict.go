package auth

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
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
	return d.object(func(name string) error {
		if name == "crit" {
			// RFC 7515 section 4.1.11: the edge understands no extension,
			// so a token that requires one is refused.
			return shapeErr("the header has crit")
		}
		return d.skip(1)
	})
}

// UnmarshalJSON decodes the claims exactly as the issuer wrote them, where
// encoding/json matches member names case-insensitively and keeps the last
// of duplicated members: a name is matched case-sensitively, so "EXP",
// "GRANTS" or "Prefix" are unknown members and ignored; a duplicated
// member anywhere refuses the claims; exp, nbf and iat must be JSON numbers
// (a string such as "9999999999" is refused); iss, sub and jti strings; aud a
// string or a list of strings; grants a list of objects. iss, sub, jti,
// aud and grants may be null, read as absent. exp being present is checked by the jwt validator (code
// token_invalid), as before.
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
	return d.object(func(name string) error {
		var err error
		switch name {
		case "exp":
			c.ExpiresAt, err = d.numericDate(name)
		case "nbf":
			c.NotBefore, err = d.numericDate(name)
		case "iat":
			c.IssuedAt, err = d.numericDate(name)
		case "iss":
			c.Issuer, err = d.optStr(name)
		case "sub":
			c.Subject, err = d.optStr(name)
		case "jti":
			c.ID, err = d.optStr(name)
		case "aud":
			err = d.audience(&c.Audience)
		case "grants":
			c.Grants, err = d.grants()
		default:
			err = d.skip(1)
		}
		return err
	})
}

// maxDepth bounds nesting; encoding/json's own limit is 10000.
const maxDepth = 10000

// strictDecoder walks one JSON value held whole in b. Its input has been
// checked by json.Valid (or json.Unmarshal) first, but it checks what it
// relies on, so malformed input is an error, never a panic.
type strictDecoder struct {
	b []byte
	i int
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

// object walks an object at d.i, calling member for each member name with
// d.i at its value; member must consume the value. A name seen twice (after
// unescaping) is an error.
func (d *strictDecoder) object(member func(name string) error) error {
	if d.peek() != '{' {
		return errSyntax
	}
	d.i++
	d.ws()
	if d.peek() == '}' {
		d.i++
		return nil
	}
	// Claims and grants have a handful of members: a list compares
	// faster than a map builds.
	var seenBuf [16]string
	seen := seenBuf[:0]
	var seenMap map[string]struct{}
	for {
		d.ws()
		name, err := d.rawString()
		if err != nil {
			return err
		}
		if seenMap != nil {
			if _, dup := seenMap[name]; dup {
				return shapeErr("a member is duplicated")
			}
			seenMap[name] = struct{}{}
		} else {
			for _, s := range seen {
				if s == name {
					return shapeErr("a member is duplicated")
				}
			}
			if len(seen) < cap(seen) {
				seen = append(seen, name)
			} else {
				seenMap = make(map[string]struct{}, 2*len(seen))
				for _, s := range seen {
					seenMap[s] = struct{}{}
				}
				seenMap[name] = struct{}{}
			}
		}
		d.ws()
		if d.peek() != ':' {
			return errSyntax
		}
		d.i++
		d.ws()
		if err := member(name); err != nil {
			return err
		}
		d.ws()
		switch d.peek() {
		case ',':
			d.i++
		case '}':
			d.i++
			return nil
		default:
			return errSyntax
		}
	}
}

// rawString reads a string at d.i and returns it unescaped.
func (d *strictDecoder) rawString() (string, error) {
	start, end, escaped, err := d.stringSpan()
	if err != nil {
		return "", err
	}
	if !escaped {
		return string(d.b[start+1 : end-1]), nil
	}
	var s string
	if err := json.Unmarshal(d.b[start:end], &s); err != nil {
		return "", errSyntax
	}
	return s, nil
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
	return d.rawString()
}

// optStr reads a member's value that must be a string or null (absent).
func (d *strictDecoder) optStr(name string) (string, error) {
	if d.literal("null") {
		return "", nil
	}
	return d.str(name)
}

// numericDate reads a member's value that must be a JSON number.
func (d *strictDecoder) numericDate(name string) (*jwt.NumericDate, error) {
	start := d.i
	if c := d.peek(); c != '-' && (c < '0' || c > '9') {
		return nil, shapeErr("%s is not a number", name)
	}
	for d.i < len(d.b) {
		c := d.b[d.i]
		if (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			d.i++
			continue
		}
		break
	}
	n := new(jwt.NumericDate)
	if err := n.UnmarshalJSON(d.b[start:d.i]); err != nil {
		// Out of range (1e400) or not a number after all.
		return nil, shapeErr("%s is not a usable number", name)
	}
	return n, nil
}

// audience reads aud: a string, a list of strings, or null (absent).
func (d *strictDecoder) audience(aud *jwt.ClaimStrings) error {
	if d.literal("null") {
		return nil
	}
	switch d.peek() {
	case '"':
		s, err := d.rawString()
		if err != nil {
			return err
		}
		*aud = jwt.ClaimStrings{s}
		return nil
	case '[':
	default:
		return shapeErr("aud is not a string or a list of strings")
	}
	list := jwt.ClaimStrings{}
	err := d.array(func() error {
		s, err := d.str("an aud entry")
		list = append(list, s)
		return err
	})
	*aud = list
	return err
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
	err := d.array(func() error {
		if d.peek() != '{' {
			return shapeErr("a grant is not an object")
		}
		var g Grant
		var hasSource, hasPrefix bool
		err := d.object(func(name string) error {
			var err error
			switch name {
			case "source":
				g.Source, err = d.str("a grant's source")
				hasSource = true
			case "prefix":
				g.Prefix, err = d.str("a grant's prefix")
				hasPrefix = true
			default:
				err = d.skip(3)
			}
			return err
		})
		if err != nil {
			return err
		}
		if !hasSource || !hasPrefix {
			return shapeErr("a grant lacks source or prefix")
		}
		gs = append(gs, g)
		return nil
	})
	return gs, err
}

// array walks an array at d.i, calling elem with d.i at each element.
func (d *strictDecoder) array(elem func() error) error {
	if d.peek() != '[' {
		return errSyntax
	}
	d.i++
	d.ws()
	if d.peek() == ']' {
		d.i++
		return nil
	}
	for {
		d.ws()
		if err := elem(); err != nil {
			return err
		}
		d.ws()
		switch d.peek() {
		case ',':
			d.i++
		case ']':
			d.i++
			return nil
		default:
			return errSyntax
		}
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
		return d.object(func(string) error { return d.skip(depth + 1) })
	case c == '[':
		return d.array(func() error { return d.skip(depth + 1) })
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
		for d.i < len(d.b) {
			c := d.b[d.i]
			if (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
				d.i++
				continue
			}
			break
		}
		return nil
	}
	return errSyntax
}
