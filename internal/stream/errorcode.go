package stream

import (
	"bytes"
	"net/http"
)

// maxErrorCode bounds the code kept from an error body.
const maxErrorCode = 64

// ErrorCode returns storage's error code from an error answer: Azure's
// x-ms-error-code header, else the <Code> element of an S3, GCS (XML API)
// or Azure XML error body, of which body is a bounded prefix. Only a code
// of 1-64 letters, digits, '.', '_' or '-' is returned, never other text
// of the body (which names bucket and request ids): "" otherwise.
func ErrorCode(h http.Header, body []byte) string {
	if v := h.Get("X-Ms-Error-Code"); v != "" {
		if validCode(v) {
			return v
		}
		return ""
	}
	i := bytes.Index(body, []byte("<Code>"))
	if i < 0 {
		return ""
	}
	rest := body[i+len("<Code>"):]
	j := bytes.Index(rest, []byte("</Code>"))
	if j < 0 {
		return ""
	}
	code := string(bytes.TrimSpace(rest[:j]))
	if !validCode(code) {
		return ""
	}
	return code
}

func validCode(s string) bool {
	if s == "" || len(s) > maxErrorCode {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
