package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestConnectionsSchema(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"connections", "schema"}, 0, `CREATE TABLE IF NOT EXISTS "edge_connections"`},
		{[]string{"connections", "schema", "-table", "tenants.conns", "-channel", "conns", "-role", "edge_ro"}, 0, `GRANT SELECT ON "tenants"."conns" TO "edge_ro"`},
		{[]string{"connections", "schema", "-table", "x;drop"}, 2, ""},
		{[]string{"connections"}, 2, ""},
		{[]string{"connections", "nope"}, 2, ""},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(tc.args, &out, &errb); code != tc.code {
				t.Fatalf("exit %d, want %d; stderr %s", code, tc.code, errb.String())
			}
			if !strings.Contains(out.String(), tc.want) {
				t.Errorf("stdout lacks %q:\n%s", tc.want, out.String())
			}
			if tc.code == 0 && !strings.Contains(out.String(), "pg_notify(") {
				t.Errorf("no trigger in:\n%s", out.String())
			}
		})
	}
}
