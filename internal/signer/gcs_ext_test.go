package signer

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// The general V4 algorithm the conformance vectors exercise: extra signed
// headers and query parameters. Presign never signs either, so this lives
// with the tests and reaches the signer through gcsV4Request.ext.

// gcsHeader is one extra signed header, given raw: the extension
// lowercases and trims it.
type gcsHeader struct{ name, value string }

// gcsExt is a gcsExtension with extra headers and query parameters.
type gcsExt struct {
	headers []gcsHeader
	query   []gcsParam
}

// canonicalQuery merges the extra query parameters (gcs_query.go).
func (e *gcsExt) canonicalQuery(g *GCS, tss string, expires int64, signedHeaders string) (string, error) {
	return gcsQuery(e.query).canonicalQuery(g, tss, expires, signedHeaders)
}

// canonicalHeaders returns the signed-header list, the canonical header
// block (one "name:value\n" line per header, host included) and the payload
// hash. Names are lowercased and sorted; values trimmed with inner runs of
// whitespace collapsed to one space; repeated names joined with commas. An
// x-goog-content-sha256 header replaces UNSIGNED-PAYLOAD.
func (e *gcsExt) canonicalHeaders(g *GCS) (signed, block, payload string, err error) {
	in := e.headers
	hs := make([]gcsHeader, 0, len(in)+1)
	hs = append(hs, gcsHeader{"host", g.signHost})
	for _, h := range in {
		name := strings.ToLower(strings.TrimSpace(h.name))
		if name == "" || strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r == ':' || r == ';' || r == 0x7f }) {
			return "", "", "", fmt.Errorf("gcs: header name %q: want a token without spaces, ':' or ';'", h.name)
		}
		if name == "host" {
			return "", "", "", errors.New("gcs: header host is set from the endpoint")
		}
		hs = append(hs, gcsHeader{name, gcsCollapseSpace(h.value)})
	}
	slices.SortStableFunc(hs, func(a, b gcsHeader) int { return strings.Compare(a.name, b.name) })
	var sb, bb strings.Builder
	payload = gcsUnsignedPayload
	for i := 0; i < len(hs); {
		name, value := hs[i].name, hs[i].value
		for i++; i < len(hs) && hs[i].name == name; i++ {
			value += "," + hs[i].value
		}
		if sb.Len() > 0 {
			sb.WriteByte(';')
		}
		sb.WriteString(name)
		bb.WriteString(name)
		bb.WriteByte(':')
		bb.WriteString(value)
		bb.WriteByte('\n')
		if name == gcsContentSHA256 {
			payload = value
		}
	}
	return sb.String(), bb.String(), payload, nil
}

// gcsCollapseSpace trims s and collapses each inner run of spaces and tabs
// to one space, as the canonical header rules require.
func gcsCollapseSpace(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ' ', '\t', '\n', '\v', '\f', '\r':
			space = b.Len() > 0
		default:
			if space {
				b.WriteByte(' ')
				space = false
			}
			b.WriteByte(c)
		}
	}
	return b.String()
}
