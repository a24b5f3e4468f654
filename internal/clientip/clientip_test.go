package clientip

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func mustNew(t testing.TB, cidrs ...string) *Resolver {
	t.Helper()
	r, errs := New("server.trusted_proxies", cidrs)
	if errs != nil {
		t.Fatalf("New: %v", errs)
	}
	return r
}

func TestResolve(t *testing.T) {
	r := mustNew(t, "10.0.0.0/8", "192.168.1.1", "fd00::/8", "::ffff:172.16.0.0/108")
	tests := []struct {
		name string
		peer string
		xff  []string
		want string // "" = the zero Addr
	}{
		{"no header, untrusted peer", "203.0.113.7:5000", nil, "203.0.113.7"},
		{"no header, trusted peer", "10.1.2.3:5000", nil, "10.1.2.3"},
		{"untrusted peer's header ignored", "203.0.113.7:5000", []string{"1.1.1.1"}, "203.0.113.7"},
		{"one trusted hop", "10.1.2.3:5000", []string{"198.51.100.4"}, "198.51.100.4"},
		{"spoofed left entries ignored", "10.1.2.3:5000", []string{"6.6.6.6, 198.51.100.4"}, "198.51.100.4"},
		{"client forges trusted-looking left entries", "10.1.2.3:1", []string{"10.9.9.9, 198.51.100.4"}, "198.51.100.4"},
		{"two trusted hops", "10.1.2.3:5000", []string{"6.6.6.6, 198.51.100.4, 10.0.0.9"}, "198.51.100.4"},
		{"single-host trust", "192.168.1.1:80", []string{"198.51.100.4"}, "198.51.100.4"},
		{"single host is /32", "192.168.1.2:80", []string{"198.51.100.4"}, "192.168.1.2"},
		{"several header lines read from the last", "10.1.2.3:5000", []string{"6.6.6.6, 198.51.100.4", "10.0.0.9"}, "198.51.100.4"},
		{"last line's last entry first", "10.1.2.3:5000", []string{"10.0.0.8", "198.51.100.5, 10.0.0.9"}, "198.51.100.5"},
		{"all trusted: left-most", "10.1.2.3:5000", []string{"10.0.0.7, 10.0.0.8"}, "10.0.0.7"},
		{"spaces and tabs", "10.1.2.3:5000", []string{" \t198.51.100.4 \t,\t10.0.0.9 "}, "198.51.100.4"},
		{"empty elements", "10.1.2.3:5000", []string{"198.51.100.4,, ,10.0.0.9,"}, "198.51.100.4"},
		{"empty header", "10.1.2.3:5000", []string{""}, "10.1.2.3"},
		{"only commas", "10.1.2.3:5000", []string{",,,"}, "10.1.2.3"},
		{"entry with port", "10.1.2.3:5000", []string{"198.51.100.4:4711"}, "198.51.100.4"},
		{"ipv6 entry", "10.1.2.3:5000", []string{"2001:db8::1"}, "2001:db8::1"},
		{"bracketed ipv6 with port", "10.1.2.3:5000", []string{"[2001:db8::1]:443"}, "2001:db8::1"},
		{"bracketed ipv6 without port", "10.1.2.3:5000", []string{"[2001:db8::1]"}, "2001:db8::1"},
		{"ipv6 peer trusted", "[fd00::5]:443", []string{"198.51.100.4"}, "198.51.100.4"},
		{"mapped peer matches ipv4 prefix", "[::ffff:10.1.2.3]:443", []string{"198.51.100.4"}, "198.51.100.4"},
		{"mapped entry is unmapped", "10.1.2.3:5000", []string{"::ffff:198.51.100.4"}, "198.51.100.4"},
		{"mapped trusted entry skipped", "10.1.2.3:5000", []string{"198.51.100.4, ::ffff:10.0.0.1"}, "198.51.100.4"},
		{"mapped cidr in config", "172.16.0.9:1", []string{"198.51.100.4"}, "198.51.100.4"},
		{"garbage right after the peer: the peer", "10.1.2.3:5000", []string{"198.51.100.4, unknown"}, "10.1.2.3"},
		{"garbage behind a trusted hop: that hop", "10.1.2.3:5000", []string{"6.6.6.6, garbage, 10.0.0.9"}, "10.0.0.9"},
		{"garbage left of the client is never read", "10.1.2.3:5000", []string{"garbage, 198.51.100.4"}, "198.51.100.4"},
		{"obfuscated identifier", "10.1.2.3:5000", []string{"_hidden"}, "10.1.2.3"},
		{"zoned entry refused", "10.1.2.3:5000", []string{"fe80::1%eth0"}, "10.1.2.3"},
		{"cidr in header is garbage", "10.1.2.3:5000", []string{"198.51.100.0/24"}, "10.1.2.3"},
		{"bad port is garbage", "10.1.2.3:5000", []string{"198.51.100.4:99999"}, "10.1.2.3"},
		{"quotes are garbage", "10.1.2.3:5000", []string{`"198.51.100.4"`}, "10.1.2.3"},
		{"bracketed ipv4 is garbage", "10.1.2.3:5000", []string{"[198.51.100.4]"}, "10.1.2.3"},
		{"peer without port", "10.1.2.3", []string{"198.51.100.4"}, "198.51.100.4"},
		{"unix socket peer", "@", []string{"198.51.100.4"}, ""},
		{"empty peer", "", nil, ""},
		{"garbage peer", "not-an-ip:80", []string{"198.51.100.4"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := r.Resolve(tt.peer, tt.xff)
			want := netip.Addr{}
			if tt.want != "" {
				want = netip.MustParseAddr(tt.want)
			}
			if got != want {
				t.Errorf("Resolve(%q, %q) = %v, want %v", tt.peer, tt.xff, got, want)
			}
		})
	}
}

func TestNilResolverTrustsNobody(t *testing.T) {
	var r *Resolver
	if got, want := r.Resolve("10.1.2.3:1", []string{"198.51.100.4"}), netip.MustParseAddr("10.1.2.3"); got != want {
		t.Errorf("got %v, want %v", got, want)
	}
	empty := mustNew(t)
	if got, want := empty.Resolve("10.1.2.3:1", []string{"198.51.100.4"}), netip.MustParseAddr("10.1.2.3"); got != want {
		t.Errorf("no trusted proxies: got %v, want %v", got, want)
	}
}

func TestFromRequest(t *testing.T) {
	r := mustNew(t, "10.0.0.0/8")
	req := httptest.NewRequest("GET", "/v1/s/a/b", nil)
	req.RemoteAddr = "10.0.0.1:1234"
	req.Header.Add("X-Forwarded-For", "6.6.6.6, 198.51.100.4")
	req.Header.Add("X-Forwarded-For", "10.0.0.2")
	if got, want := r.FromRequest(req), netip.MustParseAddr("198.51.100.4"); got != want {
		t.Errorf("got %v, want %v", got, want)
	}
	if !r.PeerTrusted(req) {
		t.Error("PeerTrusted = false for a trusted peer")
	}
	req.RemoteAddr = "203.0.113.1:1"
	if r.PeerTrusted(req) {
		t.Error("PeerTrusted = true for an untrusted peer")
	}
}

func TestNewErrors(t *testing.T) {
	secret := "s3cr3t-value"
	_, errs := New("server.trusted_proxies", []string{"10.0.0.0/8", secret, "", "10.0.0.0/33", "fe80::/10%eth0", "::ffff:1.2.3.4/64", " 192.168.0.0/16 "})
	want := []string{
		"server.trusted_proxies[1]:",
		"server.trusted_proxies[2]:",
		"server.trusted_proxies[3]:",
		"server.trusted_proxies[4]:",
		"server.trusted_proxies[5]:",
	}
	if len(errs) != len(want) {
		t.Fatalf("got %d errors %v, want %d", len(errs), errs, len(want))
	}
	for i, err := range errs {
		if !strings.HasPrefix(err.Error(), want[i]) {
			t.Errorf("error %d = %q, want prefix %q", i, err, want[i])
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "10.0.0.0/33") {
			t.Errorf("error %d echoes its value: %q", i, err)
		}
	}
	if errs := Validate("server.trusted_proxies", []string{"10.0.0.0/8", "2001:db8::/32", "127.0.0.1", " 10.1.0.0/16"}); errs != nil {
		t.Errorf("valid list refused: %v", errs)
	}
}

func TestPrefixesAreMasked(t *testing.T) {
	r := mustNew(t, "10.1.2.3/8")
	if !r.Trusted(netip.MustParseAddr("10.200.0.1")) {
		t.Error("10.1.2.3/8 should cover 10.200.0.1")
	}
}

// TestNoXFFAllocs pins the common case (no X-Forwarded-For) at zero
// allocations, and the trusted-proxy case too.
func TestNoXFFAllocs(t *testing.T) {
	r := mustNew(t, "10.0.0.0/8", "fd00::/8")
	req := httptest.NewRequest("GET", "/v1/s/a/b", nil)
	req.RemoteAddr = "203.0.113.7:5555"
	if n := testing.AllocsPerRun(1000, func() { _ = r.FromRequest(req) }); n != 0 {
		t.Errorf("no XFF: %v allocs, want 0", n)
	}
	req.RemoteAddr = "10.0.0.1:5555"
	req.Header.Set("X-Forwarded-For", "6.6.6.6, [2001:db8::1]:443, 10.0.0.2")
	if n := testing.AllocsPerRun(1000, func() { _ = r.FromRequest(req) }); n != 0 {
		t.Errorf("XFF through trusted proxies: %v allocs, want 0", n)
	}
}

func BenchmarkFromRequest(b *testing.B) {
	r := mustNew(b, "10.0.0.0/8", "fd00::/8")
	direct := httptest.NewRequest("GET", "/v1/s/a/b", nil)
	direct.RemoteAddr = "203.0.113.7:5555"
	proxied := httptest.NewRequest("GET", "/v1/s/a/b", nil)
	proxied.RemoteAddr = "10.0.0.1:5555"
	proxied.Header.Set("X-Forwarded-For", "6.6.6.6, 198.51.100.4, 10.0.0.2")
	for _, bc := range []struct {
		name string
		req  *http.Request
	}{{"direct", direct}, {"xff", proxied}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = r.FromRequest(bc.req)
			}
		})
	}
}
