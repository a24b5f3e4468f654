package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// walkDups is an independent reader for the fuzz targets: a json.Decoder
// token walk that fails on a member duplicated in any object.
func walkDups(dec *json.Decoder) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	switch d {
	case '{':
		seen := map[string]bool{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return err
			}
			name := k.(string)
			if seen[name] {
				return fmt.Errorf("member %q duplicated", name)
			}
			seen[name] = true
			if err := walkDups(dec); err != nil {
				return err
			}
		}
	case '[':
		for dec.More() {
			if err := walkDups(dec); err != nil {
				return err
			}
		}
	}
	_, err = dec.Token() // the closing delimiter
	return err
}

// oracleDecode checks b is one UTF-8 JSON object with no duplicated
// member, and decodes it case-sensitively (a map) with numbers kept as
// written.
func oracleDecode(b []byte) (map[string]any, error) {
	if !utf8.Valid(b) || !json.Valid(b) {
		return nil, errors.New("not UTF-8 JSON")
	}
	if err := walkDups(json.NewDecoder(bytes.NewReader(b))); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, errors.New("not an object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data")
	}
	return m, nil
}

func oracleHeader(b []byte) error {
	m, err := oracleDecode(b)
	if err != nil {
		return err
	}
	if _, ok := m["crit"]; ok {
		return errors.New("crit")
	}
	return nil
}

// oracleClaims reports a rule that claims b break, or a difference
// between b and c, the claims the edge read from b.
func oracleClaims(b []byte, c *Claims) error {
	m, err := oracleDecode(b)
	if err != nil {
		return err
	}
	for _, name := range []string{"exp", "nbf", "iat"} {
		v, ok := m[name]
		if !ok {
			continue
		}
		if _, ok := v.(json.Number); !ok {
			return fmt.Errorf("%s is not a number", name)
		}
	}
	if _, ok := m["exp"]; ok != (c.ExpiresAt != nil) {
		return fmt.Errorf("exp present %v, read %v", ok, c.ExpiresAt)
	}
	if _, ok := m["nbf"]; ok != (c.NotBefore != nil) {
		return fmt.Errorf("nbf present %v, read %v", ok, c.NotBefore)
	}
	for name, got := range map[string]string{"iss": c.Issuer, "sub": c.Subject} {
		if v, _ := m[name].(string); v != got {
			return fmt.Errorf("%s %q, read %q", name, v, got)
		}
	}
	var want []Grant
	if gs, ok := m["grants"]; ok && gs != nil {
		list, ok := gs.([]any)
		if !ok {
			return errors.New("grants is not a list")
		}
		for _, g := range list {
			o, ok := g.(map[string]any)
			if !ok {
				return errors.New("a grant is not an object")
			}
			src, ok1 := o["source"].(string)
			pre, ok2 := o["prefix"].(string)
			if !ok1 || !ok2 {
				return errors.New("a grant lacks source or prefix")
			}
			want = append(want, Grant{src, pre})
		}
	}
	if !slices.Equal(want, c.Grants) {
		return fmt.Errorf("grants %+v, read %+v", want, c.Grants)
	}
	return nil
}

// FuzzClaimsJSON compares Claims.UnmarshalJSON with the independent reader
// on any JSON: it never panics, never accepts claims that break a rule,
// reads what the reader reads, and refuses nothing the reader and the
// claim types accept.
func FuzzClaimsJSON(f *testing.F) {
	for _, tt := range strictCases() {
		f.Add([]byte(tt.claims))
		f.Add([]byte(tt.header))
	}
	for _, s := range []string{
		`{}`, `[]`, `null`, `{"exp":1e400}`, `{"aud":[1,{}]}`, `{"aud":["a","b"]}`, `{"a":{"b":{"c":[{"d":1,"d":2}]}}}`,
		`{"grants":[{"source":"a","prefix":"","prefix":""}]}`, `{"\u0065xp":1,"exp":2}`, "{\"exp\xff\":1}",
		`{"exp":-0.5e3,"nbf":0,"iat":1E2}`, `{"sub":null,"iss":null,"jti":null,"aud":null,"grants":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var c Claims
		err := json.Unmarshal(b, &c)
		oerr := oracleClaims(b, &c)
		if err == nil {
			if oerr != nil {
				t.Fatalf("accepted claims %q that break a rule: %v", b, oerr)
			}
			return
		}
		if !json.Valid(b) {
			return
		}
		m, derr := oracleDecode(b)
		if derr != nil {
			return // refused by the reader too
		}
		// Refused by the edge but not the reader: only the rules, or a
		// claim's type (a number out of range, aud not strings), or
		// nesting deeper than maxDepth may be why.
		if oracleRulesOnly(m) != nil || strings.Contains(err.Error(), "nested too deep") {
			return
		}
		t.Fatalf("refused claims %q the reader accepts: %v", b, err)
	})
}

// oracleRulesOnly checks the rules on the decoded map alone.
func oracleRulesOnly(m map[string]any) error {
	for _, name := range []string{"exp", "nbf", "iat"} {
		if v, ok := m[name]; ok {
			if _, ok := v.(json.Number); !ok {
				return errors.New(name)
			}
		}
	}
	for _, name := range []string{"iss", "sub", "jti"} {
		if v, ok := m[name]; ok && v != nil {
			if _, ok := v.(string); !ok {
				return errors.New(name)
			}
		}
	}
	for _, name := range []string{"exp", "nbf", "iat"} {
		if n, ok := m[name].(json.Number); ok {
			if f, err := n.Float64(); err != nil || f > 253402300799 || f < -253402300799 {
				return errors.New(name) // past year 9999: int64 seconds would wrap
			}
		}
	}
	switch aud := m["aud"].(type) {
	case nil, string:
	case []any:
		for _, a := range aud {
			if _, ok := a.(string); !ok {
				return errors.New("aud")
			}
		}
	default:
		return errors.New("aud")
	}
	if gs, ok := m["grants"]; ok && gs != nil {
		list, ok := gs.([]any)
		if !ok {
			return errors.New("grants")
		}
		for _, g := range list {
			o, ok := g.(map[string]any)
			if !ok {
				return errors.New("grant")
			}
			if _, ok := o["source"].(string); !ok {
				return errors.New("source")
			}
			if _, ok := o["prefix"].(string); !ok {
				return errors.New("prefix")
			}
		}
	}
	return nil
}
