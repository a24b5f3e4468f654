package listing

import (
	"testing"
	"unicode/utf16"
	"unicode/utf8"
)

func TestUTF16Order(t *testing.T) {
	tests := []struct {
		a, b string
		want int // sign
	}{
		{"", "", 0}, {"a", "a", 0}, {"a", "b", -1}, {"a", "ab", -1}, {"a-c", "a/b", -1},
		{"\uff01", "\U0001F600", 1}, // fullwidth ! after the emoji in UTF-16, before it in bytes
		{"x\uff01", "x\U0001F600", 1},
		{"\ud7ff", "\U0001F600", -1}, // below the surrogates: as bytes
		{"\U0001F600", "\U0001F601", -1},
		{"é", "\U0001F600", -1},
		{"\ue000", "\U00010000", 1},
	}
	for _, tt := range tests {
		if got := sign(UTF16Order(tt.a, tt.b)); got != tt.want {
			t.Errorf("UTF16Order(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := sign(UTF16Order(tt.b, tt.a)); got != -tt.want {
			t.Errorf("UTF16Order(%q, %q) = %d, want %d", tt.b, tt.a, got, -tt.want)
		}
	}
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

// FuzzUTF16Order compares UTF16Order with comparing the encoded code units.
func FuzzUTF16Order(f *testing.F) {
	f.Add("a\uff01", "a\U0001F600")
	f.Add("abc", "abd")
	f.Fuzz(func(t *testing.T, a, b string) {
		if !utf8.ValidString(a) || !utf8.ValidString(b) {
			return
		}
		ua, ub := utf16.Encode([]rune(a)), utf16.Encode([]rune(b))
		want := 0
		for i := 0; i < len(ua) && i < len(ub) && want == 0; i++ {
			want = sign(int(ua[i]) - int(ub[i]))
		}
		if want == 0 {
			want = sign(len(ua) - len(ub))
		}
		if got := sign(UTF16Order(a, b)); got != want {
			t.Fatalf("UTF16Order(%q, %q) = %d, want %d", a, b, got, want)
		}
	})
}
