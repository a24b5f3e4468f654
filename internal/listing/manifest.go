package listing

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/edgeproxy/edge/internal/jsonstr"
	"io"
	"strconv"
	"time"
)

// Change values of a manifest line written with Options.Since.
const (
	Added     = "added"
	Changed   = "changed"
	Unchanged = "unchanged"
	Removed   = "removed"
)

// maxLineBytes bounds one line of an old manifest (a check result is a
// few hundred bytes; a line this long is not one of ours).
const maxLineBytes = 1 << 20

// Summary is the last line of a manifest.
type Summary struct {
	Objects   int64   `json:"objects"`
	Added     int64   `json:"added"`
	Changed   int64   `json:"changed"`
	Unchanged int64   `json:"unchanged"`
	Removed   int64   `json:"removed"`
	Problems  int64   `json:"problems"`
	Seconds   float64 `json:"seconds"`
	// BytesRead is what the checks read; written only when a check hook
	// ran (Options.Check).
	BytesRead int64 `json:"bytes_read,omitempty"`
}

// line is one manifest line to write.
type line struct {
	obj    Object
	change string          // "" without Since
	check  json.RawMessage // nil: no "check" field
}

// appendLine appends one object line (or, for Removed, the key and
// change only) and a newline to dst. It allocates nothing.
func appendLine(dst []byte, l *line) []byte {
	dst = append(dst, `{"key":`...)
	dst = appendString(dst, l.obj.Key)
	if l.change == Removed {
		dst = append(dst, `,"change":"removed"}`+"\n"...)
		return dst
	}
	dst = append(dst, `,"size":`...)
	dst = strconv.AppendInt(dst, l.obj.Size, 10)
	dst = append(dst, `,"etag":`...)
	dst = appendString(dst, l.obj.ETag)
	if !l.obj.LastModified.IsZero() {
		dst = append(dst, `,"last_modified":"`...)
		dst = l.obj.LastModified.UTC().AppendFormat(dst, time.RFC3339)
		dst = append(dst, '"')
	}
	if l.change != "" {
		dst = append(dst, `,"change":"`...)
		dst = append(dst, l.change...)
		dst = append(dst, '"')
	}
	if l.check != nil {
		dst = append(dst, `,"check":`...)
		dst = append(dst, l.check...)
	}
	return append(dst, '}', '\n')
}

// appendSummary appends the summary line.
func appendSummary(dst []byte, s *Summary, withBytes bool) []byte {
	dst = append(dst, `{"summary":{"objects":`...)
	dst = strconv.AppendInt(dst, s.Objects, 10)
	dst = append(dst, `,"added":`...)
	dst = strconv.AppendInt(dst, s.Added, 10)
	dst = append(dst, `,"changed":`...)
	dst = strconv.AppendInt(dst, s.Changed, 10)
	dst = append(dst, `,"unchanged":`...)
	dst = strconv.AppendInt(dst, s.Unchanged, 10)
	dst = append(dst, `,"removed":`...)
	dst = strconv.AppendInt(dst, s.Removed, 10)
	dst = append(dst, `,"problems":`...)
	dst = strconv.AppendInt(dst, s.Problems, 10)
	dst = append(dst, `,"seconds":`...)
	dst = strconv.AppendFloat(dst, s.Seconds, 'f', 3, 64)
	if withBytes {
		dst = append(dst, `,"bytes_read":`...)
		dst = strconv.AppendInt(dst, s.BytesRead, 10)
	}
	return append(dst, "}}\n"...)
}

// appendString appends s as a JSON string (internal/jsonstr).
func appendString(dst []byte, s string) []byte { return jsonstr.Append(dst, s) }

// OldEntry is one object of an older manifest.
type OldEntry struct {
	Key   string
	Size  int64
	ETag  string
	Check json.RawMessage // its "check", if it had one
}

// ManifestError is a problem with an older manifest, naming its line.
type ManifestError struct {
	Line int
	Msg  string
}

func (e *ManifestError) Error() string {
	return fmt.Sprintf("old manifest, line %d: %s", e.Line, e.Msg)
}

// ManifestReader reads an older manifest line by line, as a key-ordered
// stream for the diff: every line must be one of the shapes Sync writes,
// keys strictly increasing (in byte order, or the source's Order), and the summary line last (a
// manifest without one was cut short, and diffing against it would call
// every object past the cut "added"). Removed lines are order-checked and
// skipped; unknown fields are ignored.
type ManifestReader struct {
	// Order is the order keys must increase in; NewManifestReader sets
	// ByteOrder (Sync sets its lister's).
	Order   KeyOrder
	r       *bufio.Reader
	line    int
	prev    string
	started bool
	done    bool
	buf     []byte
}

// NewManifestReader reads the manifest in r.
func NewManifestReader(r io.Reader) *ManifestReader {
	return &ManifestReader{Order: ByteOrder, r: bufio.NewReaderSize(r, 64<<10)}
}

// oldLine is the JSON of any line; pointers tell absent from zero.
type oldLine struct {
	Key          *string         `json:"key"`
	Size         *int64          `json:"size"`
	ETag         *string         `json:"etag"`
	LastModified *string         `json:"last_modified"`
	Change       *string         `json:"change"`
	Check        json.RawMessage `json:"check"`
	Summary      json.RawMessage `json:"summary"`
}

// Next returns the next object, or io.EOF after the summary line.
func (m *ManifestReader) Next() (OldEntry, error) {
	if m.done {
		return OldEntry{}, io.EOF
	}
	for {
		raw, err := m.readLine()
		if err == io.EOF {
			return OldEntry{}, &ManifestError{Line: m.line, Msg: "ends without a summary line: the run that wrote it did not finish"}
		}
		if err != nil {
			return OldEntry{}, err
		}
		bad := func(format string, args ...any) (OldEntry, error) {
			return OldEntry{}, &ManifestError{Line: m.line, Msg: fmt.Sprintf(format, args...)}
		}
		if len(bytes.TrimSpace(raw)) == 0 {
			return bad("empty line")
		}
		var l oldLine
		if err := json.Unmarshal(raw, &l); err != nil {
			var syn *json.SyntaxError
			if errors.As(err, &syn) {
				return bad("not JSON (at byte %d)", syn.Offset)
			}
			return bad("not a manifest line (a field has the wrong type)")
		}
		if l.Summary != nil {
			if l.Key != nil {
				return bad("a summary line with a key")
			}
			if !bytes.HasPrefix(bytes.TrimSpace(l.Summary), []byte("{")) {
				return bad("summary is not an object")
			}
			// Nothing may follow the summary.
			if _, err := m.readLine(); err != io.EOF {
				if err != nil {
					return OldEntry{}, err
				}
				return bad("a line after the summary line")
			}
			m.done = true
			return OldEntry{}, io.EOF
		}
		if l.Key == nil {
			return bad("no key")
		}
		key := *l.Key
		if key == "" {
			return bad("empty key")
		}
		if m.started && m.Order(key, m.prev) <= 0 {
			if key == m.prev {
				return bad("key %q listed twice", key)
			}
			return bad("keys out of order: %q after %q (a manifest is in the order its source lists keys in)", key, m.prev)
		}
		m.prev, m.started = key, true
		change := ""
		if l.Change != nil {
			change = *l.Change
		}
		switch change {
		case "", Added, Changed, Unchanged:
		case Removed:
			continue // gone already then: not part of the old state
		default:
			return bad("unknown change %.20q", change)
		}
		if l.Size == nil {
			return bad("no size")
		}
		if *l.Size < 0 {
			return bad("negative size")
		}
		e := OldEntry{Key: key, Size: *l.Size}
		if l.ETag != nil {
			e.ETag = *l.ETag
		}
		if l.Check != nil && !bytes.Equal(l.Check, []byte("null")) {
			e.Check = append(json.RawMessage(nil), l.Check...)
		}
		return e, nil
	}
}

// readLine returns the next line without its newline (valid until the
// next call), or io.EOF when there is none.
func (m *ManifestReader) readLine() ([]byte, error) {
	m.buf = m.buf[:0]
	for {
		chunk, err := m.r.ReadSlice('\n')
		m.buf = append(m.buf, chunk...)
		if len(m.buf) > maxLineBytes {
			m.line++
			return nil, &ManifestError{Line: m.line, Msg: fmt.Sprintf("longer than %d bytes", maxLineBytes)}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			if len(m.buf) == 0 {
				return nil, io.EOF
			}
			m.line++
			return m.buf, nil // a last line without its newline
		}
		if err != nil {
			return nil, fmt.Errorf("old manifest: %w", err)
		}
		m.line++
		return m.buf[:len(m.buf)-1], nil
	}
}
