package edge

import (
	"strings"
	"testing"

	"github.com/edgeproxy/edge/internal/connections"
)

// FuzzParseEntry feeds a connection file's bytes through the edge's spec
// path (name injection, ParseSpec): it never panics, a spec it accepts
// carries the connection's name, and no problem quotes the marker as a value (keys are named).
func FuzzParseEntry(f *testing.F) {
	for _, s := range []string{
		"provider: s3\nbucket: b\nregion: eu-west-1\ncredentials: {type: static, access_key_id: A, secret_access_key: SECRETMARK}\n",
		`{"provider":"file","root":"/tmp","prefix":"SECRETMARK"}`,
		"name: other\nprovider: s3\n",
		"- 1\n- 2\n",
		"{provider: s3, bucket: SECRETMARK, prefix: \"SECRETMARK\"}",
		"&a {provider: *a}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e := connections.Entry{Name: "fz", Origin: connections.OriginDir, Path: "fz.yaml", Data: data}
		sc, problems := parseEntry(e)
		if sc != nil && sc.Name != "fz" {
			t.Fatalf("accepted a spec named %q", sc.Name)
		}
		for _, p := range problems {
			// A key is named (an unknown key by its name), a value never:
			// the marker may appear only in the key path before ": ".
			i, colon := strings.Index(p.Message, "SECRETMARK"), strings.Index(p.Message, ": ")
			if i >= 0 && (colon < 0 || i > colon) {
				t.Fatalf("a problem quotes a value: %s", p.Message)
			}
		}
	})
}
