package bytesize

import (
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want Size
		ok   bool
	}{
		{"0", 0, true},
		{"1048576", MiB, true},
		{"100MiB", 100 * MiB, true},
		{"100 MiB", 100 * MiB, true},
		{"100mib", 100 * MiB, true},
		{"100MB", 100_000_000, true},
		{"1.5GiB", 3 * GiB / 2, true},
		{"64k", 64 * KiB, true},
		{"2T", 2 * TiB, true},
		{"7B", 7, true},
		{"", 0, false},
		{"MiB", 0, false},
		{"-1", 0, false},
		{"10XB", 0, false},
		{"1.2.3", 0, false},
		{"99999999999TiB", 0, false},
		{"9223372036854775807", 1<<63 - 1, true},
		{"9223372036854775808", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := Parse(tt.in)
			if got != tt.want || ok != tt.ok {
				t.Errorf("Parse(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestYAML(t *testing.T) {
	var c struct {
		A Size `yaml:"a"`
		B Size `yaml:"b"`
		C Size `yaml:"c"`
		D Size `yaml:"d"`
	}
	if err := yaml.Unmarshal([]byte("a: 100MiB\nb: 4096\nc: lots\nd: [1]\n"), &c); err != nil {
		t.Fatal(err)
	}
	if c.A != 100*MiB || c.B != 4096 || c.C != Invalid || c.D != Invalid {
		t.Errorf("got %+v", c)
	}
}

func TestString(t *testing.T) {
	for s, want := range map[Size]string{100 * MiB: "100MiB", 1536: "1536B", 2 * GiB: "2GiB", 0: "0B"} {
		if got := s.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int64(s), got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"100MiB", "1.5 g", "0", "-3", "1e9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if v, ok := Parse(s); ok && v < 0 {
			t.Fatalf("Parse(%q) = %d", s, v)
		}
	})
}
