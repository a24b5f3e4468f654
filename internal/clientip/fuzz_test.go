package clientip

import (
	"strings"
	"testing"
)

// FuzzResolve feeds arbitrary peers and X-Forwarded-For values. The
// invariants: no panic; an untrusted peer is always the answer; otherwise
// the answer is the peer or a valid, unzoned, unmapped address that appears
// in the header.
func FuzzResolve(f *testing.F) {
	seeds := [][2]string{
		{"10.1.2.3:5000", "6.6.6.6, 198.51.100.4"},
		{"10.1.2.3:5000", "198.51.100.4, unknown"},
		{"10.1.2.3:5000", "[2001:db8::1]:443, 10.0.0.9"},
		{"[::ffff:10.1.2.3]:1", "::ffff:198.51.100.4"},
		{"203.0.113.7:5000", "1.1.1.1"},
		{"10.1.2.3:5000", ",,, ,"},
		{"@", "1.2.3.4"},
		{"10.1.2.3:5000", "fe80::1%eth0, [::1%lo]:1"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1], "")
	}
	r, _ := New("k", []string{"10.0.0.0/8", "fd00::/8"})
	f.Fuzz(func(t *testing.T, peer, line1, line2 string) {
		xff := []string{line1}
		if line2 != "" {
			xff = append(xff, line2)
		}
		got := r.Resolve(peer, xff)
		p := Peer(peer)
		if !r.Trusted(p) {
			if got != p {
				t.Fatalf("untrusted peer %v: got %v", p, got)
			}
			return
		}
		if got == p {
			return
		}
		if !got.IsValid() || got.Zone() != "" || got.Is4In6() {
			t.Fatalf("got %v", got)
		}
		found := false
		for _, l := range xff {
			for _, e := range strings.Split(l, ",") {
				if a, ok := parseEntry(trimOWS(e)); ok && a == got {
					found = true
				}
			}
		}
		if !found {
			t.Fatalf("%v is neither the peer nor in %q", got, xff)
		}
	})
}
