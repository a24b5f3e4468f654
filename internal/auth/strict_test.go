package auth

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// signRaw signs header and claims exactly as written (duplicates, case
// variants and all) with HS256 and secret1.
func signRaw(t testing.TB, header, claims string) string {
	t.Helper()
	s := b64(header) + "." + b64(claims)
	sig, err := jwt.SigningMethodHS256.Sign(s, []byte(secret1))
	if err != nil {
		t.Fatal(err)
	}
	return s + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// rawClaims is the claims of claims() as JSON text, with extra members
// appended; drop names members to leave out.
func rawClaims(extra string, drop ...string) string {
	members := []struct{ name, value string }{
		{"iss", `"` + testIssuer + `"`},
		{"aud", `"` + testAudience + `"`},
		{"sub", `"annotator-17"`},
		{"iat", fmt.Sprint(t0.Unix() - 60)},
		{"exp", fmt.Sprint(t0.Unix() + 3600)},
		{"grants", `[{"source":"customer-a","prefix":"datasets/42/"}]`},
	}
	var b strings.Builder
	b.WriteByte('{')
	for _, m := range members {
		if slices.Contains(drop, m.name) {
			continue
		}
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		b.WriteString(`"` + m.name + `":` + m.value)
	}
	if extra != "" {
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		b.WriteString(extra)
	}
	b.WriteByte('}')
	return b.String()
}

const hsHeader = `{"alg":"HS256","typ":"JWT"}`

var ourGrant = []Grant{{Source: "customer-a", Prefix: "datasets/42/"}}

// strictCases are the attacks of the hardening issue: header and claims
// read more loosely than the issuer wrote them. Each attack row is
// accepted (or accepted with other grants) by a case-insensitive,
// last-duplicate-wins decoder; the controls and the "already refused" rows
// pass either way.
func strictCases() []struct {
	name, header, claims string
	code                 string  // "" when accepted
	grants               []Grant // the grants read, when accepted
} {
	exp := fmt.Sprint(t0.Unix() + 3600)
	past := fmt.Sprint(t0.Unix() - 3600)
	return []struct {
		name, header, claims string
		code                 string
		grants               []Grant
	}{
		// crit.
		{"crit header", `{"alg":"HS256","typ":"JWT","crit":["exp"]}`, rawClaims(""), "token_malformed", nil},
		{"crit header, empty list", `{"alg":"HS256","crit":[]}`, rawClaims(""), "token_malformed", nil},
		// Case-insensitive names.
		{"EXP stands in for a missing exp", hsHeader, rawClaims(`"EXP":`+exp, "exp"), "token_invalid", nil},
		{"GRANTS after grants", hsHeader, rawClaims(`"GRANTS":[{"source":"customer-a","prefix":""}]`), "", ourGrant},
		{"Prefix after prefix", hsHeader, rawClaims(`"grants":[{"source":"customer-a","prefix":"datasets/42/","Prefix":""}]`, "grants"), "", ourGrant},
		{"SOURCE after source", hsHeader, rawClaims(`"grants":[{"source":"customer-a","prefix":"datasets/42/","SOURCE":"customer-b"}]`, "grants"), "", ourGrant},
		{"AUD for a missing aud", hsHeader, rawClaims(`"AUD":"`+testAudience+`"`, "aud"), "token_bad_audience", nil},
		{"Iss for a missing iss", hsHeader, rawClaims(`"Iss":"`+testIssuer+`"`, "iss"), "token_bad_issuer", nil},
		{"Nbf in the future is not nbf", hsHeader, rawClaims(`"Nbf":` + exp), "", ourGrant},
		// Duplicated members, at every level.
		{"header kid duplicated", `{"alg":"HS256","kid":"nope","kid":"hs1"}`, rawClaims(""), "token_malformed", nil},
		{"header alg duplicated", `{"alg":"HS256","alg":"HS256"}`, rawClaims(""), "token_malformed", nil},
		{"exp duplicated, past then future", hsHeader, `{"exp":` + past + `,` + rawClaims("")[1:], "token_malformed", nil},
		{"exp duplicated by an escape", hsHeader, rawClaims(`"\u0065xp":` + exp), "token_malformed", nil},
		{"grants duplicated", hsHeader, rawClaims(`"grants":[{"source":"customer-a","prefix":""}]`), "token_malformed", nil},
		{"aud duplicated", hsHeader, rawClaims(`"aud":"other"`), "token_malformed", nil},
		{"prefix duplicated in a grant", hsHeader, rawClaims(`"grants":[{"source":"customer-a","prefix":"datasets/42/","prefix":""}]`, "grants"), "token_malformed", nil},
		{"source duplicated in a grant", hsHeader, rawClaims(`"grants":[{"source":"customer-b","prefix":"","source":"customer-a"}]`, "grants"), "token_malformed", nil},
		{"member duplicated in an unknown claim", hsHeader, rawClaims(`"ext":{"a":[{"b":1,"b":2}]}`), "token_malformed", nil},
		// Numeric dates.
		{"exp a string", hsHeader, rawClaims(`"exp":"9999999999"`, "exp"), "token_malformed", nil},
		{"nbf a string", hsHeader, rawClaims(`"nbf":"0"`), "token_malformed", nil},
		{"iat a string", hsHeader, rawClaims(`"iat":"0"`, "iat"), "token_malformed", nil},
		{"exp null", hsHeader, rawClaims(`"exp":null`, "exp"), "token_malformed", nil},
		// Past int64 seconds, time.Unix wraps: nbf 1e19 read as the year
		// -292277022657 (valid now), iat too.
		{"nbf past int64", hsHeader, rawClaims(`"nbf":1e19`), "token_malformed", nil},
		{"iat past int64", hsHeader, rawClaims(`"iat":1e19`, "iat"), "token_malformed", nil},
		{"exp past int64", hsHeader, rawClaims(`"exp":1e19`, "exp"), "token_malformed", nil},
		// Grants.
		{"grant without prefix", hsHeader, rawClaims(`"grants":[{"source":"customer-a"}]`, "grants"), "token_malformed", nil},
		{"grant without prefix beside a good one", hsHeader, rawClaims(`"grants":[{"source":"customer-a","prefix":"datasets/42/"},{"source":"customer-b"}]`, "grants"), "token_malformed", nil},
		{"grant prefix null", hsHeader, rawClaims(`"grants":[{"source":"customer-a","prefix":null}]`, "grants"), "token_malformed", nil},
		{"grant without source", hsHeader, rawClaims(`"grants":[{"prefix":""}]`, "grants"), "token_malformed", nil},
		{"already refused: grant source not a string", hsHeader, rawClaims(`"grants":[{"source":7,"prefix":""}]`, "grants"), "token_malformed", nil},
		{"already refused: grant not an object", hsHeader, rawClaims(`"grants":["customer-a"]`, "grants"), "token_malformed", nil},
		{"already refused: claims null (no exp)", hsHeader, "null", "token_invalid", nil},
		{"already refused: claims a string", hsHeader, `"x"`, "token_malformed", nil},
		{"crit null is still crit", `{"alg":"HS256","crit":null}`, rawClaims(""), "token_malformed", nil},
		// Controls: what the rules keep accepting.
		{"control: as written", hsHeader, rawClaims(""), "", ourGrant},
		{"control: empty prefix covers the source", hsHeader, rawClaims(`"grants":[{"source":"customer-b","prefix":"","note":{"x":1}}]`, "grants"), "", []Grant{{"customer-b", ""}}},
		{"control: grants null", hsHeader, rawClaims(`"grants":null`, "grants"), "", nil},
		{"control: fractional exp", hsHeader, rawClaims(`"exp":`+exp+`.5`, "exp"), "", ourGrant},
		{"control: escaped names", hsHeader, rawClaims(`"gr\u0061nts":[{"s\u006furce":"customer-a","prefix":"datasets/42/"}]`, "grants"), "", ourGrant},
		{"control: whitespace", " {\"alg\" : \"HS256\"}\n", "\t" + strings.ReplaceAll(rawClaims(""), ",", " ,\n "), "", ourGrant},
	}
}

func TestVerifyStrictClaims(t *testing.T) {
	for _, tt := range strictCases() {
		t.Run(tt.name, func(t *testing.T) {
			v := newVerifier(t, fullConfig(t), newClock(t0).Now)
			tok := signRaw(t, tt.header, tt.claims)
			for range 2 { // the second Verify must not find a refused token cached
				c, hit, err := v.Verify(tok)
				if tt.code == "" {
					if err != nil {
						t.Fatalf("got %v, want the token accepted", err)
					}
					if !slices.Equal(c.Grants, tt.grants) {
						t.Fatalf("got grants %+v, want %+v", c.Grants, tt.grants)
					}
					continue
				}
				if got := code(err); got != tt.code {
					t.Fatalf("got code %s (%v), want %s", got, err, tt.code)
				}
				if c != nil || hit {
					t.Fatalf("got claims %+v, hit %v with an error", c, hit)
				}
				for _, part := range strings.Split(tok, ".") {
					if len(part) > 8 && strings.Contains(err.Error(), part) {
						t.Fatalf("error %q quotes the token", err)
					}
				}
			}
		})
	}
}
