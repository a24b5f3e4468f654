package stream

import (
	"net/http"
	"strconv"
	"strings"
)

// MaxRanges is the most ranges one Range header may ask for before it is
// ignored (nginx's max_ranges): a multipart answer to thousands of tiny
// ranges costs more than the object itself.
const MaxRanges = 8

// maxRangeHeader bounds the Range header's length; a longer one is
// ignored, never passed to storage (which would answer 400).
const maxRangeHeader = 512

// RangeAllowed reports whether a Range header may be honoured for an
// object of size bytes (size < 0: unknown, as for a streamed object). It
// refuses more than MaxRanges ranges, a header longer than 512 bytes,
// ranges that add up to more than the object (overlapping ones: a
// multipart body bigger than the object), and with the size unknown any
// two explicit ranges that overlap. A refused Range is ignored: the whole
// object is answered with 200, as RFC 9110 section 14.2 allows. Ranges it
// cannot read are left to the server or storage to judge (416 or
// ignored).
func RangeAllowed(v string, size int64) bool {
	if v == "" {
		return true
	}
	if len(v) > maxRangeHeader {
		return false
	}
	spec, ok := cutPrefixFold(v, "bytes=")
	if !ok {
		return true
	}
	if strings.Count(spec, ",") >= MaxRanges {
		return false
	}
	type span struct{ start, end int64 } // end inclusive; start -1: suffix of end+1 bytes
	var spans [MaxRanges]span
	n := 0
	var total int64
	for part := range strings.SplitSeq(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		a, b, ok := strings.Cut(part, "-")
		if !ok {
			return true
		}
		a, b = strings.TrimSpace(a), strings.TrimSpace(b)
		var sp span
		if a == "" {
			l, err := strconv.ParseInt(b, 10, 64)
			if err != nil || l < 0 {
				return true
			}
			sp = span{-1, l - 1}
			if size >= 0 {
				l = min(l, size)
				sp = span{size - l, size - 1}
			}
		} else {
			start, err := strconv.ParseInt(a, 10, 64)
			if err != nil || start < 0 {
				return true
			}
			end := int64(-1) // open
			if b != "" {
				if end, err = strconv.ParseInt(b, 10, 64); err != nil || end < start {
					return true
				}
			}
			if size >= 0 {
				if start >= size {
					continue // unsatisfiable: no bytes
				}
				if end < 0 || end >= size {
					end = size - 1
				}
			} else if end < 0 {
				end = 1<<62 - 1
			}
			sp = span{start, end}
		}
		if size >= 0 {
			total += sp.end - sp.start + 1
			if total > size && n > 0 {
				return false
			}
		}
		for _, o := range spans[:n] {
			if size < 0 && (sp.start < 0) == (o.start < 0) && sp.start < 0 {
				return false // two suffix ranges always overlap
			}
			if size < 0 && sp.start >= 0 && o.start >= 0 && sp.start <= o.end && o.start <= sp.end {
				return false
			}
		}
		spans[n] = sp
		n++
	}
	return true
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

// maxConditionalHeader bounds each conditional header passed to storage.
const maxConditionalHeader = 1024

// errHeaderTooLarge is the answer to a conditional header storage would
// refuse with 400.
var errHeaderTooLarge = &Error{Status: http.StatusBadRequest, Code: "header_too_large", Message: "a conditional header (If-None-Match, If-Match, If-Modified-Since, If-Unmodified-Since, If-Range) is longer than 1024 bytes"}

// CheckRequest refuses, before anything is signed or fetched, request
// headers that storage would answer 400 to: a conditional header longer
// than 1024 bytes (a Range past the cap is ignored instead, see
// RangeAllowed).
func CheckRequest(h http.Header) error {
	for _, k := range requestHeaders[1:] {
		n := 0
		for _, v := range h[k] {
			n += len(v)
		}
		if n > maxConditionalHeader {
			return errHeaderTooLarge
		}
	}
	return nil
}
