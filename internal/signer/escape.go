package signer

// EscapePath percent-encodes a key for a URL path: RFC 3986 unreserved
// characters and '/' stay, every other byte becomes %XX (upper-case hex).
// S3 (SigV4, no double escaping), GCS V4 and Azure all take this form, and
// so do the edge's own /v1/f URLs.
func EscapePath(s string) string {
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) && s[i] != '/' {
			return string(appendEscaped(make([]byte, 0, len(s)+16), s, true))
		}
	}
	return s
}

// appendEscaped appends s percent-encoded to dst; '/' stays when keepSlash.
func appendEscaped(dst []byte, s string, keepSlash bool) []byte {
	const upperHex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) || keepSlash && c == '/' {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', upperHex[c>>4], upperHex[c&0x0f])
	}
	return dst
}

// unreserved reports whether c is an RFC 3986 section 2.3 unreserved character.
func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}
