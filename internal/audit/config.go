package audit

import (
	"fmt"
	"net/url"

	"github.com/edgeproxy/edge/internal/bytesize"
)

// Config is the audit section of the edge's config. With neither File nor
// Webhook set, there is no audit trail.
type Config struct {
	// File is the JSON-lines file records are appended to, rotated at
	// MaxSize with MaxFiles kept; "-" writes to stdout; "" writes no file.
	File string `yaml:"file"`
	// MaxSize is the size at which the file is rotated ("100MiB"). A
	// rotation never splits a record: lines move to the next file whole.
	MaxSize bytesize.Size `yaml:"max_size"`
	// MaxFiles is how many files are kept on disk, the one being written
	// included (at least 2); older ones are deleted.
	MaxFiles int `yaml:"max_files"`
	// Webhook, when set, receives every record too: JSON lines POSTed in
	// batches (Content-Type application/x-ndjson), retried with
	// exponential backoff until answered 2xx (at least once: a batch may
	// arrive twice; X-Edge-Audit-Batch names it for deduplication). It
	// may carry a secret in its path or query; it is never logged. A user
	// name or password in it is refused.
	Webhook string `yaml:"webhook"`
	// Queue is how many records wait for the writer (default 8192, about
	// 450 bytes each); past it records are dropped and counted, never
	// waited for.
	Queue int `yaml:"queue"`
	// WebhookBuffer is how many records wait for the webhook (default
	// 100000) while it is slow or failing; past it new records are dropped
	// for the webhook and counted.
	WebhookBuffer int `yaml:"webhook_buffer"`
}

// Defaults fills what the operator left out.
func (c *Config) Defaults() {
	if c.MaxSize == 0 {
		c.MaxSize = 100 * bytesize.MiB
	}
	if c.MaxFiles == 0 {
		c.MaxFiles = 10
	}
	if c.Queue == 0 {
		c.Queue = 8192
	}
	if c.WebhookBuffer == 0 {
		c.WebhookBuffer = 100000
	}
}

// Enabled reports whether the config asks for an audit trail.
func (c *Config) Enabled() bool { return c.File != "" || c.Webhook != "" }

const minMaxSize = 4 * bytesize.KiB

// Validate returns every problem in c, each naming its key under key
// ("audit"); no message echoes a value (a webhook URL may hold a secret).
func (c *Config) Validate(key string) []error {
	var errs []error
	bad := func(field, msg string) { errs = append(errs, fmt.Errorf("%s.%s: %s", key, field, msg)) }
	if c.MaxSize == bytesize.Invalid {
		bad("max_size", "must be a size such as 100MiB")
	} else if c.MaxSize < minMaxSize || c.MaxSize > bytesize.TiB {
		bad("max_size", "must be between 4KiB and 1TiB")
	}
	if c.MaxFiles < 2 || c.MaxFiles > 10000 {
		bad("max_files", "must be between 2 (the current file and one rotated) and 10000")
	}
	if c.Queue < 1 || c.Queue > 1<<20 {
		bad("queue", "must be between 1 and 1048576")
	}
	if c.WebhookBuffer < 1 || c.WebhookBuffer > 10_000_000 {
		bad("webhook_buffer", "must be between 1 and 10000000")
	}
	if c.Webhook != "" {
		if msg := checkWebhook(c.Webhook); msg != "" {
			bad("webhook", msg)
		}
	}
	return errs
}

func checkWebhook(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "must be an http or https URL"
	case u.Scheme != "http" && u.Scheme != "https":
		return "must be an http or https URL"
	case u.User != nil:
		return "must not carry a user name or password (a secret belongs in the path or query, or in a header the receiver checks)"
	case u.Host == "":
		return "must name a host"
	case u.Fragment != "":
		return "must not have a #fragment"
	}
	return ""
}
