package audit

import (
	"strings"
	"testing"

	"github.com/edgeproxy/edge/internal/bytesize"
	"go.yaml.in/yaml/v3"
)

func TestConfigYAML(t *testing.T) {
	var c struct {
		Audit Config `yaml:"audit"`
	}
	src := "audit:\n  file: /var/log/edge/audit.jsonl\n  max_size: 100MiB\n  max_files: 10\n  webhook: \"https://hooks.example.com/audit?k=abc\"\n"
	if err := yaml.Unmarshal([]byte(src), &c); err != nil {
		t.Fatal(err)
	}
	c.Audit.Defaults()
	if c.Audit.MaxSize != 100*bytesize.MiB || c.Audit.MaxFiles != 10 || c.Audit.File != "/var/log/edge/audit.jsonl" {
		t.Errorf("got %+v", c.Audit)
	}
	if errs := c.Audit.Validate("audit"); errs != nil {
		t.Errorf("Validate: %v", errs)
	}
	var d Config
	d.Defaults()
	if d.MaxSize != 100*bytesize.MiB || d.MaxFiles != 10 || d.Queue != 8192 || d.Enabled() {
		t.Errorf("defaults %+v", d)
	}
}

func TestConfigValidate(t *testing.T) {
	const secret = "hunter2-SECRET"
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"stdout", "file: \"-\"", nil},
		{"bad size", "file: a.jsonl\nmax_size: lots-" + secret, []string{"audit.max_size: must be a size"}},
		{"tiny size", "file: a.jsonl\nmax_size: 1KiB", []string{"audit.max_size: must be between"}},
		{"one file", "file: a.jsonl\nmax_files: 1", []string{"audit.max_files:"}},
		{"negative queue", "queue: -1", []string{"audit.queue:"}},
		{"webhook userinfo", "webhook: \"https://user:" + secret + "@hooks.example.com/x\"", []string{"audit.webhook: must not carry a user name or password"}},
		{"webhook scheme", "webhook: \"ftp://hooks.example.com/" + secret + "\"", []string{"audit.webhook: must be an http or https URL"}},
		{"webhook no host", "webhook: \"https:///" + secret + "\"", []string{"audit.webhook: must name a host"}},
		{"webhook garbage", "webhook: \"https://exa mple.com/%zz" + secret + "\"", []string{"audit.webhook: must be an http or https URL"}},
		{"webhook fragment", "webhook: \"https://h.example.com/a#" + secret + "\"", []string{"audit.webhook: must not have a #fragment"}},
		{"several at once", "max_size: -5\nmax_files: 1\nwebhook_buffer: -1", []string{"audit.max_size:", "audit.max_files:", "audit.webhook_buffer:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Config
			if err := yaml.Unmarshal([]byte(tt.yaml), &c); err != nil {
				t.Fatal(err)
			}
			c.Defaults()
			errs := c.Validate("audit")
			if len(errs) != len(tt.want) {
				t.Fatalf("got %v, want %d errors", errs, len(tt.want))
			}
			for i, err := range errs {
				if !strings.HasPrefix(err.Error(), tt.want[i]) {
					t.Errorf("got %q, want prefix %q", err, tt.want[i])
				}
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error echoes the value: %q", err)
				}
			}
			if len(errs) > 0 {
				if _, err := New(c, Options{}); err == nil || strings.Contains(err.Error(), secret) {
					t.Errorf("New = %v", err)
				}
			}
		})
	}
}
