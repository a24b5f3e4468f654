package connections

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestValidName(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"customer-a", true}, {"A.b_c-9", true}, {"0", true},
		{"", false}, {".hidden", false}, {"-x", false}, {"_x", false}, {"a b", false},
		{"a/b", false}, {"ü", false}, {strings.Repeat("a", 63), true}, {strings.Repeat("a", 64), false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if got := ValidName(tc.in); got != tc.want {
				t.Errorf("ValidName(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseFileName(t *testing.T) {
	for _, tc := range []struct {
		file, name, format string
		ok                 bool
	}{
		{"cats.yaml", "cats", formatYAML, true},
		{"cats.yml", "cats", formatYAML, true},
		{"cats.json", "cats", formatJSON, true},
		{"a.b.yaml", "a.b", formatYAML, true},
		{"Bad Name.yaml", "Bad Name", formatYAML, true}, // reported as bad_name, not ignored
		{"..data", "", "", false},
		{"..2026_12_01_10_00_00.123", "", "", false},
		{".cats.yaml", "", "", false},
		{"cats.yaml.swp", "", "", false},
		{"cats.YAML", "", "", false},
		{"README.md", "", "", false},
		{".yaml", "", "", false},
		{"yaml", "", "", false},
		{"", "", "", false},
	} {
		t.Run(tc.file, func(t *testing.T) {
			name, format, ok := ParseFileName(tc.file)
			if name != tc.name || format != tc.format || ok != tc.ok {
				t.Errorf("ParseFileName(%q) = %q, %q, %v; want %q, %q, %v", tc.file, name, format, ok, tc.name, tc.format, tc.ok)
			}
		})
	}
}

func TestParseNotification(t *testing.T) {
	for _, tc := range []struct {
		in   string
		name string
		all  bool
	}{
		{"cats", "cats", false}, {" cats\n", "cats", false}, {"", "", true}, {"   ", "", true},
		{"not a name", "", true}, {"..data", "", true}, {strings.Repeat("x", 100), "", true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			name, all := ParseNotification(tc.in)
			if name != tc.name || all != tc.all {
				t.Errorf("ParseNotification(%q) = %q, %v; want %q, %v", tc.in, name, all, tc.name, tc.all)
			}
		})
	}
}

const secretInSpec = "AKIASECRETSHOULDNOTLEAK1234"

func TestNewEntryEnvelope(t *testing.T) {
	for _, tc := range []struct {
		desc, name, format, data, code string
	}{
		{"yaml mapping", "cats", formatYAML, "provider: s3\nbucket: b\n", ""},
		{"yaml with matching name", "cats", formatYAML, "name: cats\nprovider: s3\n", ""},
		{"yaml with other name", "cats", formatYAML, "name: dogs\nprovider: s3\n", ProblemNameMismatch},
		{"yaml with numeric name", "1", formatYAML, "name: 1\n", ProblemNameMismatch},
		{"yaml with quoted numeric name", "1", formatYAML, "name: \"1\"\n", ""},
		{"yaml list", "cats", formatYAML, "- a\n- b\n", ProblemNotObject},
		{"yaml scalar", "cats", formatYAML, "just text " + secretInSpec, ProblemNotObject},
		{"not yaml", "cats", formatYAML, "key: [unclosed " + secretInSpec, ProblemSyntax},
		{"yaml tab indent", "cats", formatYAML, "a:\n\tb: " + secretInSpec, ProblemSyntax},
		{"empty yaml", "cats", formatYAML, "", ProblemSyntax},
		{"two yaml docs", "cats", formatYAML, "a: 1\n---\nb: 2\n", ProblemMultiDoc},
		{"json in a yaml file", "cats", formatYAML, `{"provider":"s3"}`, ""},
		{"json object", "cats", formatJSON, `{"provider":"s3","secret_access_key":"` + secretInSpec + `"}`, ""},
		{"json name matches", "cats", formatJSON, `{"name":"cats"}`, ""},
		{"json name differs", "cats", formatJSON, `{"name":"dogs"}`, ProblemNameMismatch},
		{"json name not a string", "cats", formatJSON, `{"name":["cats"]}`, ProblemNameMismatch},
		{"json array", "cats", formatJSON, `["` + secretInSpec + `"]`, ProblemNotObject},
		{"json string", "cats", formatJSON, `"` + secretInSpec + `"`, ProblemNotObject},
		{"json null", "cats", formatJSON, `null`, ProblemNotObject},
		{"bad json", "cats", formatJSON, `{"a": ` + secretInSpec, ProblemSyntax},
		{"empty json", "cats", formatJSON, ` `, ProblemSyntax},
		{"bad name", "Bad Name", formatJSON, `{}`, ProblemBadName},
		{"too large", "cats", formatJSON, `{"a":"` + strings.Repeat("x", MaxSpecBytes) + `"}`, ProblemTooLarge},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			e := newEntry(OriginDir, tc.name+".x", tc.name, tc.format, []byte(tc.data))
			var p *Problem
			errors.As(e.Problem, &p)
			got := ""
			if p != nil {
				got = p.Code
			}
			if got != tc.code {
				t.Fatalf("problem = %v, want code %q", e.Problem, tc.code)
			}
			if p != nil && strings.Contains(p.Error(), secretInSpec) {
				t.Fatalf("problem %q quotes the spec", p.Error())
			}
			if len(e.Version) != 24 {
				t.Errorf("version %q: want 24 hex digits", e.Version)
			}
		})
	}
}

func TestVersionChangesWithContent(t *testing.T) {
	a := newEntry(OriginDir, "a.yaml", "a", formatYAML, []byte("x: 1\n"))
	b := newEntry(OriginDir, "a.yaml", "a", formatYAML, []byte("x: 2\n"))
	c := newEntry(OriginDir, "a.yaml", "a", formatYAML, []byte("x: 1\n"))
	if a.Version == b.Version || a.Version != c.Version {
		t.Fatalf("versions %s %s %s: want a≠b, a=c", a.Version, b.Version, c.Version)
	}
}

func TestMerge(t *testing.T) {
	ent := func(origin, path, name string) Entry {
		return Entry{Origin: origin, Path: path, Name: name, Version: name + path}
	}
	entries := []Entry{
		ent(OriginPostgres, "", "shared"),
		ent(OriginDir, "shared.yaml", "shared"),
		ent(OriginPostgres, "", "only-pg"),
		ent(OriginDir, "twice.yaml", "twice"),
		ent(OriginDir, "twice.json", "twice"),
		ent(OriginDir, "cfg.yaml", "cfg"),
		ent(OriginPostgres, "", "cfg"),
		ent(OriginDir, "only-dir.yml", "only-dir"),
		{Origin: OriginDir, Path: "broken.yaml", Name: "broken", Problem: &Problem{Code: ProblemSyntax}},
		ent(OriginPostgres, "", "broken"),
	}
	wantWinners := []string{"dir/broken.yaml", "dir/only-dir.yml", "postgres/only-pg", "dir/shared.yaml", "dir/twice.json"}
	wantConflicts := []string{
		"postgres/broken<dir",
		"dir/cfg.yaml<config", "postgres/cfg<config",
		"postgres/shared<dir",
		"dir/twice.yaml<dir",
	}
	for i := 0; i < 20; i++ {
		shuffled := append([]Entry(nil), entries...)
		rand.Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
		w, c := Merge([]string{"cfg", "absent"}, shuffled)
		var gw, gc []string
		id := func(e Entry) string {
			if e.Path == "" {
				return e.Origin + "/" + e.Name
			}
			return e.Origin + "/" + e.Path
		}
		for _, e := range w {
			gw = append(gw, id(e))
		}
		for _, x := range c {
			gc = append(gc, id(x.Entry)+"<"+x.WinnerOrigin)
		}
		if !reflect.DeepEqual(gw, wantWinners) {
			t.Fatalf("winners = %v, want %v", gw, wantWinners)
		}
		if !reflect.DeepEqual(gc, wantConflicts) {
			t.Fatalf("conflicts = %v, want %v", gc, wantConflicts)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	const pw = "hunter2-very-secret"
	for _, tc := range []struct {
		desc string
		cfg  Config
		want []string // substrings, one per error
	}{
		{"empty is fine", Config{}, nil},
		{"dir only", Config{Dir: "/etc/edge/connections.d"}, nil},
		{"postgres url", Config{Postgres: PostgresConfig{DSN: "postgres://u:" + pw + "@db/edge"}}, nil},
		{"postgres kv", Config{Postgres: PostgresConfig{DSN: "host=db user=u password=" + pw}}, nil},
		{"bad dsn", Config{Postgres: PostgresConfig{DSN: "postgres://u:" + pw + "@db:notaport/x"}}, []string{"connections.postgres.dsn: "}},
		{"bad table", Config{Postgres: PostgresConfig{DSN: "host=db", Table: "Robert'); DROP TABLE x;--" + pw}}, []string{"connections.postgres.table: "}},
		{"three-part table", Config{Postgres: PostgresConfig{DSN: "host=db", Table: "a.b.c"}}, []string{"connections.postgres.table: "}},
		{"schema table", Config{Postgres: PostgresConfig{DSN: "host=db", Table: "edge.conns"}}, nil},
		{"bad channel", Config{Postgres: PostgresConfig{DSN: "host=db", Channel: pw + " x"}}, []string{"connections.postgres.channel: "}},
		{"short resync", Config{Dir: "/x", Resync: time.Millisecond}, []string{"connections.resync: "}},
		{"negative resync", Config{Resync: -time.Second}, []string{"connections.resync: "}},
		{"nul dir", Config{Dir: "a\x00" + pw}, []string{"connections.dir: "}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			c := tc.cfg
			c.Defaults()
			errs := c.Validate("connections")
			if len(errs) != len(tc.want) {
				t.Fatalf("got %d errors %v, want %d", len(errs), errs, len(tc.want))
			}
			for i, err := range errs {
				if !strings.HasPrefix(err.Error(), tc.want[i]) {
					t.Errorf("error %q, want prefix %q", err, tc.want[i])
				}
				if strings.Contains(err.Error(), pw) {
					t.Errorf("error %q echoes a value", err)
				}
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	var c Config
	c.Defaults()
	if c.Postgres.Table != "edge_connections" || c.Postgres.Channel != "edge_connections" || c.Resync != 5*time.Minute {
		t.Fatalf("defaults = %+v", c)
	}
}

func TestRedact(t *testing.T) {
	for _, dsn := range []string{
		"postgres://edge:p%40ss%2Fw0rd@db:5432/x",
		"host=db user=edge password=p@ss/w0rd",
		"host=db user=edge password='p@ss/w0rd'",
	} {
		msg := "failed: " + dsn + " password=p@ss/w0rd postgres://x:p@ss/w0rd@h p%40ss%2Fw0rd"
		got := RedactDSN(dsn, msg)
		for _, s := range []string{"p@ss/w0rd", "p%40ss%2Fw0rd", "w0rd"} {
			if strings.Contains(got, s) {
				t.Errorf("RedactDSN(%q) left %q in %q", dsn, s, got)
			}
		}
	}
}

func TestSchemaSQLRefusesBadNames(t *testing.T) {
	if _, err := SchemaSQL("x; DROP", "c", "r"); err == nil {
		t.Fatal("bad table accepted")
	}
	if _, err := SchemaSQL("t", "c'", "r"); err == nil {
		t.Fatal("bad channel accepted")
	}
	if _, err := SchemaSQL("t", "c", "R"); err == nil {
		t.Fatal("bad role accepted")
	}
	s, err := SchemaSQL("edge_connections", "edge_connections", "edge_reader")
	if err != nil || !strings.Contains(s, `GRANT SELECT ON "edge_connections" TO "edge_reader"`) || strings.Contains(s, "{") && strings.Contains(s, "{TABLE") {
		t.Fatalf("SchemaSQL: %v\n%s", err, s)
	}
}

func FuzzParseFileName(f *testing.F) {
	for _, s := range []string{"cats.yaml", "a.yml", "b.json", "..data", ".x.yaml", "x.yaml.swp", "", "a/b.yaml"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, file string) {
		name, format, ok := ParseFileName(file)
		if !ok {
			return
		}
		if strings.HasPrefix(file, ".") || strings.ContainsAny(file, "/\x00") || name == "" {
			t.Fatalf("ParseFileName(%q) accepted", file)
		}
		if format != formatYAML && format != formatJSON {
			t.Fatalf("format %q", format)
		}
		if !strings.HasPrefix(file, name+".") {
			t.Fatalf("name %q is not the base of %q", name, file)
		}
	})
}

func FuzzParseNotification(f *testing.F) {
	for _, s := range []string{"cats", "", " x ", "a b", "..data"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, payload string) {
		name, all := ParseNotification(payload)
		if all == (name != "") {
			t.Fatalf("ParseNotification(%q) = %q, %v", payload, name, all)
		}
		if !all && !ValidName(name) {
			t.Fatalf("invalid name %q returned", name)
		}
	})
}

func FuzzSpecEnvelope(f *testing.F) {
	for _, s := range []string{"provider: s3\n", "name: x\n", "- a\n", "{\"name\":\"x\"}", "[1]", "a: 1\n---\nb: 2", "&a {b: *a}", ""} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, data string, yaml bool) {
		format := formatJSON
		if yaml {
			format = formatYAML
		}
		e := newEntry(OriginPostgres, "", "x", format, []byte(data))
		if e.Version == "" {
			t.Fatal("no version")
		}
		var p *Problem
		if e.Problem != nil && !errors.As(e.Problem, &p) {
			t.Fatalf("problem %T is not a *Problem", e.Problem)
		}
		if p != nil && len(data) >= 8 && strings.Contains(p.Message, data) {
			t.Fatalf("problem %q quotes the spec", p.Message)
		}
	})
}
