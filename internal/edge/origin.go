package edge

import (
	"errors"
	"strings"
)

// originPattern is one allowed CORS origin: an exact origin, or one with a
// "*." wildcard for one or more leading host labels and/or a "*" port.
type originPattern struct {
	scheme    string
	host      string // exact host, or the suffix after "*." (with its dot)
	wildHost  bool
	port      string // "" for the scheme's default, or digits
	wildPort  bool
	exactText string
}

func parseOriginPattern(p string) (originPattern, error) {
	if p == "*" {
		return originPattern{}, errors.New(`"*" is not allowed: the edge sends credentials; list origins or patterns`)
	}
	scheme, rest, ok := strings.Cut(p, "://")
	if !ok || (scheme != "http" && scheme != "https") {
		return originPattern{}, errors.New("want scheme://host[:port], scheme http or https")
	}
	if strings.ContainsAny(rest, "/?#@ ") {
		return originPattern{}, errors.New("an origin has no path, query, user or spaces")
	}
	o := originPattern{scheme: scheme}
	host := rest
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && !strings.HasSuffix(rest, "]") {
		host, o.port = rest[:i], rest[i+1:]
		if o.port == "*" {
			o.wildPort, o.port = true, ""
		} else if !allDigits(o.port) {
			return originPattern{}, errors.New("port must be digits or *")
		}
	}
	if h, ok := strings.CutPrefix(host, "*."); ok {
		o.wildHost, host = true, "."+h
		if !strings.Contains(h, ".") && h != "localhost" {
			return originPattern{}, errors.New("a host wildcard needs at least two labels after it (*.example.com)")
		}
	}
	if host == "" || strings.Contains(host, "*") {
		return originPattern{}, errors.New("only a leading *. label and a * port may be wildcards")
	}
	o.host = strings.ToLower(host)
	if !o.wildHost && !o.wildPort {
		o.exactText = strings.ToLower(p)
	}
	return o, nil
}

func (o *originPattern) match(origin string) bool {
	if o.exactText != "" {
		return origin == o.exactText
	}
	scheme, rest, ok := strings.Cut(origin, "://")
	if !ok || scheme != o.scheme {
		return false
	}
	host, port := rest, ""
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && !strings.HasSuffix(rest, "]") {
		host, port = rest[:i], rest[i+1:]
		if !allDigits(port) {
			return false
		}
	}
	if !o.wildPort && port != o.port {
		return false
	}
	if !o.wildHost {
		return host == o.host
	}
	sub, ok := strings.CutSuffix(host, o.host)
	return ok && sub != "" && validHostLabels(sub)
}

// matchOrigin reports whether origin (as browsers send it: lowercase
// scheme and host, no trailing slash) is allowed.
func matchOrigin(patterns []originPattern, origin string) bool {
	if len(origin) > 253+16 {
		return false
	}
	for i := range patterns {
		if patterns[i].match(origin) {
			return true
		}
	}
	return false
}

func allDigits(s string) bool {
	if s == "" || len(s) > 5 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// validHostLabels accepts dot-separated DNS labels of letters, digits and
// hyphens, so a pattern's wildcard cannot swallow "evil.com/" or "@".
func validHostLabels(s string) bool {
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
