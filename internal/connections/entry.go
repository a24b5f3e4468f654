// Package connections follows the stores of connections (sources added
// while the edge runs): a directory of files (a mounted ConfigMap or Secret
// works) watched with inotify, and a PostgreSQL table followed with
// LISTEN/NOTIFY, both re-read in full every `resync`.
//
// It does not parse source specs: it delivers, on every change, a full
// snapshot of raw entries (name, origin, bytes, version, problem), and the
// composition root parses them with its own spec parser. Merge settles
// names across origins the same way on every replica.
package connections

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Origins of an entry, in the order that settles a name claimed twice.
const (
	OriginConfig   = "config"
	OriginDir      = "dir"
	OriginPostgres = "postgres"
)

// Entry is one connection as a store holds it, before its spec is parsed.
type Entry struct {
	Name   string // the file's base name without extension, or the row's name
	Origin string // OriginDir or OriginPostgres
	// Path is the file name inside the directory (e.g. "cats.yaml"), or ""
	// for a row. It orders two files that claim one name (cats.json,
	// cats.yaml).
	Path string
	// Data is the spec as stored: the file's bytes (YAML or JSON; JSON is
	// YAML, so one YAML decoder reads both), or the row's spec as JSON text.
	// It is a JSON object / YAML mapping unless Problem says otherwise.
	Data []byte
	// Version is a hash of Data (and of Problem): equal versions, equal
	// entries.
	Version string
	// Problem is why the entry cannot be used (unreadable file, not a
	// mapping, bad name), as a *Problem; nil when the envelope is sound
	// (the spec itself may still be invalid: that is the parser's call).
	Problem error
	// LoadedAt is when this version was first read.
	LoadedAt time.Time
}

// Problem codes of an Entry.
const (
	ProblemUnreadable   = "unreadable"     // the file or row could not be read
	ProblemTooLarge     = "too_large"      // over MaxSpecBytes
	ProblemSyntax       = "syntax"         // not YAML / not JSON
	ProblemNotObject    = "not_an_object"  // valid, but not a mapping / JSON object
	ProblemBadName      = "bad_name"       // the name is not a valid source name
	ProblemNameMismatch = "name_mismatch"  // the spec's `name` differs from the file's or row's
	ProblemMultiDoc     = "multi_document" // a YAML file with more than one document
)

// Problem is an Entry's problem: a stable code and a message that never
// quotes the spec (it may hold a credential).
type Problem struct {
	Code    string
	Message string
}

func (p *Problem) Error() string { return p.Code + ": " + p.Message }

func problem(code, format string, args ...any) *Problem {
	return &Problem{Code: code, Message: fmt.Sprintf(format, args...)}
}

// MaxSpecBytes bounds one connection's spec (a file or a row).
const MaxSpecBytes = 1 << 20

// ValidName reports whether s is a valid source name: 1-63 letters,
// digits, '.', '_' or '-', starting with a letter or digit (the rule of the
// config's sources[].name). A dot-file is therefore never a connection.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch >= '0' && ch <= '9':
		case ch == '.' || ch == '_' || ch == '-':
			if i == 0 {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// File formats.
const (
	formatYAML = "yaml"
	formatJSON = "json"
)

// ParseFileName splits a directory entry's name into the connection name
// and the format. ok is false for names the directory store ignores:
// dot-files (Kubernetes' ..data and ..TIMESTAMP entries, editors' swap
// files) and any extension other than .yaml, .yml and .json (exactly, in
// lowercase). A name that is not a valid source name is still returned
// (ok true): the store reports it as a ProblemBadName entry rather than
// ignoring a file the operator meant as a connection.
func ParseFileName(file string) (name, format string, ok bool) {
	if file == "" || file[0] == '.' || strings.ContainsAny(file, "/\x00") {
		return "", "", false
	}
	switch {
	case strings.HasSuffix(file, ".yaml"):
		name, format = file[:len(file)-5], formatYAML
	case strings.HasSuffix(file, ".yml"):
		name, format = file[:len(file)-4], formatYAML
	case strings.HasSuffix(file, ".json"):
		name, format = file[:len(file)-5], formatJSON
	default:
		return "", "", false
	}
	if name == "" {
		return "", "", false
	}
	return name, format, true
}

// ParseNotification reads a NOTIFY payload: the name of the row that
// changed, or all=true (re-read the whole table) for an empty payload or
// anything that is not a valid source name (a statement-level trigger, a
// hand-written NOTIFY, a TRUNCATE).
func ParseNotification(payload string) (name string, all bool) {
	p := strings.TrimSpace(payload)
	if !ValidName(p) {
		return "", true
	}
	return p, false
}

// newEntry builds an entry from a spec's bytes, checking its envelope: a
// single YAML mapping or JSON object whose optional `name` equals the
// file's or row's name. The name is the file's base name (or the row's
// name): the spec need not repeat it, and when it does it must agree.
func newEntry(origin, path, name, format string, data []byte) Entry {
	e := Entry{Name: name, Origin: origin, Path: path, Data: data}
	switch {
	case !ValidName(name):
		e.Problem = problem(ProblemBadName, "the name must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit")
	case len(data) > MaxSpecBytes:
		e.Problem = problem(ProblemTooLarge, "the spec is larger than %d bytes", MaxSpecBytes)
	default:
		if p := checkEnvelope(format, name, data); p != nil {
			e.Problem = p
		}
	}
	e.Version = version(data, e.Problem)
	return e
}

// problemEntry is an entry that could not be read at all.
func problemEntry(origin, path, name string, p *Problem) Entry {
	return Entry{Name: name, Origin: origin, Path: path, Problem: p, Version: version(nil, p)}
}

func version(data []byte, p error) string {
	h := sha256.New()
	h.Write(data)
	if p != nil {
		h.Write([]byte{0})
		io.WriteString(h, p.Error())
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

var yamlLine = regexp.MustCompile(`line \d+`)

// checkEnvelope parses data just enough to know that it is one mapping and
// to read its `name`. Its messages say where, never what: the spec may
// hold a credential.
func checkEnvelope(format, name string, data []byte) *Problem {
	var specName any
	var hasName bool
	if format == formatJSON {
		trimmed := bytes.TrimSpace(data)
		if len(trimmed) == 0 {
			return problem(ProblemSyntax, "the spec is empty")
		}
		if !json.Valid(trimmed) {
			var v any
			err := json.Unmarshal(trimmed, &v)
			var se *json.SyntaxError
			if errors.As(err, &se) {
				return problem(ProblemSyntax, "not valid JSON (at byte %d)", se.Offset)
			}
			return problem(ProblemSyntax, "not valid JSON")
		}
		if trimmed[0] != '{' {
			return problem(ProblemNotObject, "the spec must be a JSON object")
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(trimmed, &m); err != nil {
			return problem(ProblemSyntax, "not valid JSON")
		}
		if raw, ok := m["name"]; ok {
			hasName = true
			if err := json.Unmarshal(raw, &specName); err != nil {
				specName = nil
			}
		}
	} else {
		dec := yaml.NewDecoder(bytes.NewReader(data))
		var doc yaml.Node
		if err := dec.Decode(&doc); err != nil {
			if errors.Is(err, io.EOF) {
				return problem(ProblemSyntax, "the spec is empty")
			}
			if l := yamlLine.FindString(err.Error()); l != "" {
				return problem(ProblemSyntax, "not valid YAML (%s)", l)
			}
			return problem(ProblemSyntax, "not valid YAML")
		}
		var more yaml.Node
		if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
			return problem(ProblemMultiDoc, "the file must hold one YAML document")
		}
		root := &doc
		if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
			root = root.Content[0]
		}
		for root.Kind == yaml.AliasNode && root.Alias != nil {
			root = root.Alias
		}
		if root.Kind != yaml.MappingNode {
			return problem(ProblemNotObject, "the spec must be a YAML mapping")
		}
		for i := 0; i+1 < len(root.Content); i += 2 {
			k, v := root.Content[i], root.Content[i+1]
			if k.Kind == yaml.ScalarNode && k.Value == "name" {
				hasName = true
				if v.Kind == yaml.ScalarNode && (v.Tag == "!!str" || v.Tag == "") {
					specName = v.Value
				} else {
					specName = nil
				}
			}
		}
	}
	if hasName {
		if s, ok := specName.(string); !ok || s != name {
			return problem(ProblemNameMismatch, "the spec's name must be a string equal to the connection's name (the file's base name or the row's name), or be left out")
		}
	}
	return nil
}

// Conflict is an entry that lost its name to another origin (or, in the
// directory, to a file that sorts first).
type Conflict struct {
	Entry        Entry
	WinnerOrigin string // OriginConfig, OriginDir or OriginPostgres
	WinnerPath   string // the winning file, when the winner is a file
}

func originRank(o string) int {
	switch o {
	case OriginConfig:
		return 0
	case OriginDir:
		return 1
	case OriginPostgres:
		return 2
	}
	return 3
}

// Merge settles names across origins the same way on every replica:
// a name in configNames (the config's sources) wins, then the directory,
// then the table; inside one origin, the file whose name sorts first
// (cats.json before cats.yaml). An entry with a Problem still holds its
// name, so a typo in a file never hands the name to the table. winners is
// sorted by name; conflicts by name, origin, path. The same entries in any
// order give the same answer.
func Merge(configNames []string, entries []Entry) (winners []Entry, conflicts []Conflict) {
	inConfig := make(map[string]bool, len(configNames))
	for _, n := range configNames {
		inConfig[n] = true
	}
	sorted := make([]Entry, len(entries))
	copy(sorted, entries)
	SortEntries(sorted)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for i := 0; i < len(sorted); {
		j := i
		for j < len(sorted) && sorted[j].Name == sorted[i].Name {
			j++
		}
		group := sorted[i:j]
		first := 0
		winOrigin, winPath := OriginConfig, ""
		if !inConfig[group[0].Name] {
			winners = append(winners, group[0])
			winOrigin, winPath = group[0].Origin, group[0].Path
			first = 1
		}
		for _, e := range group[first:] {
			conflicts = append(conflicts, Conflict{Entry: e, WinnerOrigin: winOrigin, WinnerPath: winPath})
		}
		i = j
	}
	return winners, conflicts
}

// SortEntries orders entries by origin, name, path and version: the order
// of a snapshot, the same on every replica.
func SortEntries(es []Entry) {
	sort.Slice(es, func(i, j int) bool { return entryLess(&es[i], &es[j]) })
}

func entryLess(a, b *Entry) bool {
	if ra, rb := originRank(a.Origin), originRank(b.Origin); ra != rb {
		return ra < rb
	}
	if a.Origin != b.Origin {
		return a.Origin < b.Origin
	}
	if a.Name != b.Name {
		return a.Name < b.Name
	}
	if a.Path != b.Path {
		return a.Path < b.Path
	}
	return a.Version < b.Version
}
