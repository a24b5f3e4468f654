package auth

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

func TestFromRequest(t *testing.T) {
	tests := []struct {
		name   string
		query  string
		auth   string
		cookie string
		want   string
	}{
		{"none", "", "", "", ""},
		{"query", "token=q", "", "", "q"},
		{"header", "", "Bearer h", "", "h"},
		{"cookie", "", "", "c", "c"},
		{"query beats header", "token=q", "Bearer h", "", "q"},
		{"query beats cookie", "token=q", "", "c", "q"},
		{"header beats cookie", "", "Bearer h", "c", "h"},
		{"query beats both", "a=1&token=q&b=2", "Bearer h", "c", "q"},
		{"empty query falls through", "token=", "Bearer h", "", "h"},
		{"other query names ignored", "tokens=x&xtoken=y", "", "c", "c"},
		{"bearer lower case", "", "bearer h", "", "h"},
		{"bearer upper case", "", "BEARER h", "", "h"},
		{"bearer mixed case", "", "bEaReR h", "", "h"},
		{"bearer, spaces trimmed", "", "Bearer   h  ", "", "h"},
		{"basic ignored", "", "Basic dXNlcjpwYXNz", "c", "c"},
		{"bearer without space", "", "Bearerh", "c", "c"},
		{"bearer alone", "", "Bearer", "c", "c"},
		{"query escaped", "token=a%2Eb.c", "", "", "a.b.c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/v1/s/src/k?"+tt.query, nil)
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			if tt.cookie != "" {
				r.AddCookie(&http.Cookie{Name: CookieName, Value: tt.cookie})
			}
			if got := FromRequest(r); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestBearerToken(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/v1/session?token=q", nil)
	r.AddCookie(&http.Cookie{Name: CookieName, Value: "c"})
	if got := BearerToken(r); got != "" {
		t.Errorf("without a header: got %q, want \"\" (query and cookie are not bearer)", got)
	}
	r.Header.Set("Authorization", "bearer h")
	if got := BearerToken(r); got != "h" {
		t.Errorf("got %q, want h", got)
	}
}

func TestQueryValue(t *testing.T) {
	tests := []struct {
		raw, name, want string
	}{
		{"", "token", ""},
		{"token=abc", "token", "abc"},
		{"a=1&token=abc&b=2", "token", "abc"},
		{"token=first&token=second", "token", "first"},
		{"token=&token=second", "token", ""},
		{"token", "token", ""},
		{"tokenx=1&xtoken=2", "token", ""},
		{"token=a%2Fb", "token", "a/b"},
		{"token=a+b", "token", "a b"},
		{"token=a%2Bb", "token", "a+b"},
		{"token=%E2%9C%93", "token", "✓"},
		{"token=a%zzb", "token", ""},
		{"token=a%", "token", ""},
		{"token=a%2", "token", ""},
		{"token=a%zz&token=ok", "token", ""},
		{"tok%65n=esc", "token", "esc"},
		{"my+name=v", "my name", "v"},
		{"t%zzoken=bad&token=ok", "token", "ok"},
		{"token=a=b", "token", "a=b"},
		{"&&token=x&&", "token", "x"},
		{"url=https%3A%2F%2Fb.s3.amazonaws.com%2Fk%3Fx%3D1", "url", "https://b.s3.amazonaws.com/k?x=1"},
	}
	for _, tt := range tests {
		t.Run(tt.raw+"/"+tt.name, func(t *testing.T) {
			if got := QueryValue(tt.raw, tt.name); got != tt.want {
				t.Errorf("QueryValue(%q, %q): got %q, want %q", tt.raw, tt.name, got, tt.want)
			}
		})
	}
}

func TestQueryValueAllocs(t *testing.T) {
	// The plain value is a substring of the query: no allocation.
	if n := testing.AllocsPerRun(100, func() { QueryValue("a=1&token=abc.def.ghi&b=2", "token") }); n != 0 {
		t.Errorf("got %v allocs, want 0", n)
	}
}

func FuzzQueryValue(f *testing.F) {
	for _, s := range []struct{ raw, name string }{
		{"token=abc", "token"},
		{"a=1&token=a+b%2F&token=2", "token"},
		{"token=a%zz", "token"},
		{"tok%65n=v", "token"},
		{"=v&&x", "x"},
		{"a;b=c", "a"},
		{"url=s3%3A%2F%2Fb%2Fk", "url"},
	} {
		f.Add(s.raw, s.name)
	}
	f.Fuzz(func(t *testing.T, raw, name string) {
		got := QueryValue(raw, name)
		if name == "" {
			// Callers ask for fixed names; an empty name matches an empty
			// pair, which url.ParseQuery skips.
			return
		}
		vals, err := url.ParseQuery(raw)
		if err != nil {
			// ParseQuery refuses the whole query for one bad pair; QueryValue
			// reads only up to the first match.
			return
		}
		if want := vals.Get(name); got != want {
			t.Errorf("QueryValue(%q, %q): got %q, want url.ParseQuery's %q", raw, name, got, want)
		}
	})
}
