package yamlcfg

import (
	"errors"
	"strings"
	"testing"
	"time"
)

type inner struct {
	Type string        `yaml:"type"`
	TTL  time.Duration `yaml:"ttl"`
	N    int           `yaml:"n"`
	On   bool          `yaml:"on"`
}

type doc struct {
	Name  string   `yaml:"name"`
	Items []inner  `yaml:"items"`
	Tags  []string `yaml:"tags"`
	Sub   inner    `yaml:"sub"`
}

const secret = "s3cr3t/K7MDENG+bPxRfiCY"

func TestDecode(t *testing.T) {
	env := func(k string) (string, bool) {
		if k == "SK" {
			return secret, true
		}
		return "", false
	}
	for _, tt := range []struct {
		name, yaml, prefix string
		want               []string
	}{
		{"ok", "name: a\nitems: [{type: x, ttl: 1s}]\n", "", nil},
		{"unknown key", "name: a\nitems:\n  - {type: x}\n  - {typo: y}\n", "", []string{"items[1].typo: unknown key"}},
		{"unknown key under a prefix", "sub: {typo: y}\n", "sources[3]", []string{"sources[3].sub.typo: unknown key"}},
		{"duration", "sub:\n  ttl: " + secret + "\n", "", []string{"sub.ttl: wrong type: a string where a duration"}},
		{"int", "sub:\n  n: " + secret + "\n", "", []string{"sub.n: wrong type"}},
		{"bool from env", "sub:\n  on: ${SK}\n", "", []string{"sub.on: wrong type"}},
		{"list for a string", "name: [" + secret + "]\n", "", []string{"name: wrong type: a list"}},
		{"string for a list", "tags: " + secret + "\n", "", []string{"tags: wrong type"}},
		{"unset", "name: ${NOPE}\n", "", []string{"name: environment variable NOPE is not set"}},
		{"syntax", "name: \"" + secret + "\n", "", []string{"document:"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var d doc
			errs := Decode([]byte(tt.yaml), tt.prefix, env, &d)
			if tt.want == nil {
				if len(errs) > 0 {
					t.Fatal(errs)
				}
				return
			}
			msg := errors.Join(errs...).Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("problems do not name %q:\n%s", w, msg)
				}
			}
			if strings.Contains(msg, secret) || strings.Contains(msg, "K7MDENG") {
				t.Errorf("problems echo a value:\n%s", msg)
			}
		})
	}
}
