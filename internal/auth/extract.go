package auth

import (
	"net/http"
	"net/url"
	"strings"
)

// CookieName is the cookie that carries the token for pages that use
// crossorigin="use-credentials".
const CookieName = "edge_token"

// FromRequest returns the request's token: the query parameter token, then
// an Authorization Bearer header, then the edge_token cookie. An <img src>
// cannot send headers, hence the query and the cookie.
func FromRequest(r *http.Request) string {
	if t := QueryValue(r.URL.RawQuery, "token"); t != "" {
		return t
	}
	if t := BearerToken(r); t != "" {
		return t
	}
	if c, err := r.Cookie(CookieName); err == nil {
		return c.Value
	}
	return ""
}

// BearerToken returns the token of an Authorization: Bearer header only.
func BearerToken(r *http.Request) string {
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// QueryValue returns the first value of name in a raw query string, without
// building the url.Values map. A name or value that needs unescaping is
// unescaped, as url.ParseQuery does; a value with a bad escape is returned
// empty.
func QueryValue(rawQuery, name string) string {
	for rawQuery != "" {
		var part string
		part, rawQuery, _ = strings.Cut(rawQuery, "&")
		k, v, _ := strings.Cut(part, "=")
		if strings.IndexByte(k, '%') >= 0 || strings.IndexByte(k, '+') >= 0 {
			// The name is escaped too (tok%65n=), as url.ParseQuery reads it.
			var err error
			if k, err = url.QueryUnescape(k); err != nil {
				continue
			}
		}
		if k != name {
			continue
		}
		if strings.IndexByte(v, '%') < 0 && strings.IndexByte(v, '+') < 0 {
			return v
		}
		u, err := url.QueryUnescape(v)
		if err != nil {
			return ""
		}
		return u
	}
	return ""
}
