package connections

import (
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Defaults for the connection stores.
const (
	DefaultTable   = "edge_connections"
	DefaultChannel = "edge_connections"
	DefaultResync  = 5 * time.Minute
	// MinResync keeps a typo ("5ms") from turning the safety net into a
	// busy loop against the database.
	MinResync = time.Second
)

// Config is the `connections` key: the stores the edge follows live.
// Both stores are optional; with neither, the edge has only the config's
// sources.
type Config struct {
	// Dir holds one file per connection (NAME.yaml, NAME.yml, NAME.json).
	Dir      string         `yaml:"dir"`
	Postgres PostgresConfig `yaml:"postgres"`
	// Resync is the period of the full re-read of every store, the safety
	// net behind the directory watch and LISTEN/NOTIFY.
	Resync time.Duration `yaml:"resync"`
}

// PostgresConfig is `connections.postgres`. An empty DSN disables the store.
type PostgresConfig struct {
	DSN     string `yaml:"dsn"` // holds a password: never logged, returned or echoed
	Table   string `yaml:"table"`
	Channel string `yaml:"channel"`
}

// Defaults fills the keys left empty.
func (c *Config) Defaults() {
	if c.Postgres.Table == "" {
		c.Postgres.Table = DefaultTable
	}
	if c.Postgres.Channel == "" {
		c.Postgres.Channel = DefaultChannel
	}
	if c.Resync == 0 {
		c.Resync = DefaultResync
	}
}

// Enabled reports whether any store is configured.
func (c Config) Enabled() bool { return c.Dir != "" || c.Postgres.DSN != "" }

// Validate reports every problem at once; key is the config key of c
// (normally "connections"). No message echoes a value: the DSN holds a
// password, and a secret may have been pasted into the wrong key.
func (c Config) Validate(key string) []error {
	var errs []error
	bad := func(k, msg string) { errs = append(errs, errors.New(key+"."+k+": "+msg)) }
	if strings.ContainsRune(c.Dir, 0) {
		bad("dir", "must not contain a NUL byte")
	}
	if c.Resync < 0 {
		bad("resync", "must not be negative")
	} else if c.Enabled() && c.Resync < MinResync {
		bad("resync", "must be at least 1s")
	}
	if c.Postgres.DSN != "" {
		// The parse error itself is dropped: it may quote the DSN.
		if _, err := pgx.ParseConfig(c.Postgres.DSN); err != nil {
			bad("postgres.dsn", "is not a valid PostgreSQL connection string (a postgres:// URL or key=value pairs)")
		}
		if !validTable(c.Postgres.Table) {
			bad("postgres.table", "must be a lowercase SQL identifier (a-z, 0-9, _; at most 63), optionally schema-qualified (schema.table)")
		}
		if !validIdent(c.Postgres.Channel) {
			bad("postgres.channel", "must be a lowercase SQL identifier (a-z, 0-9, _; at most 63)")
		}
	}
	return errs
}

// validIdent reports whether s is a lowercase unquoted SQL identifier, so
// that the table and channel names in queries and in `edge connections
// schema` need no quoting surprises (PostgreSQL folds unquoted names).
func validIdent(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch >= 'a' && ch <= 'z', ch == '_':
		case ch >= '0' && ch <= '9':
			if i == 0 {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// validTable reports whether s is an identifier or schema.identifier.
func validTable(s string) bool {
	schema, table, ok := strings.Cut(s, ".")
	if !ok {
		return validIdent(s)
	}
	return validIdent(schema) && validIdent(table)
}

// tableIdent returns the table name as a pgx identifier.
func tableIdent(s string) pgx.Identifier {
	if schema, table, ok := strings.Cut(s, "."); ok {
		return pgx.Identifier{schema, table}
	}
	return pgx.Identifier{s}
}
