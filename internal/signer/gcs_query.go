package signer

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// gcsParam is one extra signed query parameter, given raw: gcsQuery
// escapes it.
type gcsParam struct{ name, value string }

// gcsQuery is a gcsExtension that signs extra query parameters (a
// listing's prefix, marker and max-keys) and no extra header.
type gcsQuery []gcsParam

// canonicalHeaders signs host alone, as Presign does.
func (q gcsQuery) canonicalHeaders(g *GCS) (signed, block, payload string, err error) {
	return "host", g.hostLine, gcsUnsignedPayload, nil
}

// appendQuery appends the canonical query string: the X-Goog-* parameters
// and the extra ones, each name and value escaped, sorted by name then value.
func (q gcsQuery) canonicalQuery(g *GCS, tss string, expires int64, signedHeaders string) (string, error) {
	b, err := q.appendQuery(g, nil, []byte(tss), expires, signedHeaders)
	return string(b), err
}

func (q gcsQuery) appendQuery(g *GCS, dst, ts []byte, expires int64, signedHeaders string) ([]byte, error) {
	extra := []gcsParam(q)
	if len(extra) == 0 {
		// The five X-Goog-* names are already in sorted order.
		dst = append(dst, g.credPrefix...)
		dst = append(dst, ts[:8]...)
		dst = append(dst, "%2Fauto%2Fstorage%2Fgoog4_request&X-Goog-Date="...)
		dst = append(dst, ts...)
		dst = append(dst, "&X-Goog-Expires="...)
		dst = strconv.AppendInt(dst, expires, 10)
		dst = append(dst, "&X-Goog-SignedHeaders="...)
		return appendEscaped(dst, signedHeaders, false), nil
	}
	esc := func(s string) string { return string(appendEscaped(nil, s, false)) }
	pairs := []gcsParam{
		{"X-Goog-Algorithm", gcsAlgorithm},
		{"X-Goog-Credential", g.credEmail + "%2F" + string(ts[:8]) + esc(gcsScopeSuffix)},
		{"X-Goog-Date", string(ts)},
		{"X-Goog-Expires", strconv.FormatInt(expires, 10)},
		{"X-Goog-SignedHeaders", esc(signedHeaders)},
	}
	for _, p := range extra {
		for _, q := range pairs[:5] {
			if strings.EqualFold(p.name, q.name) {
				return nil, fmt.Errorf("gcs: query parameter %s is set by the signer", q.name)
			}
		}
		if strings.EqualFold(p.name, "X-Goog-Signature") {
			return nil, errors.New("gcs: query parameter X-Goog-Signature is set by the signer")
		}
		pairs = append(pairs, gcsParam{esc(p.name), esc(p.value)})
	}
	slices.SortFunc(pairs, func(a, b gcsParam) int {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		return strings.Compare(a.value, b.value)
	})
	for i, p := range pairs {
		if i > 0 {
			dst = append(dst, '&')
		}
		dst = append(dst, p.name...)
		dst = append(dst, '=')
		dst = append(dst, p.value...)
	}
	return dst, nil
}
