package listing

import (
	"strings"
	"unicode/utf8"
)

// A KeyOrder compares two keys the way a store lists them: negative when
// a comes first.
type KeyOrder func(a, b string) int

// ByteOrder is the order S3, GCS and the file walk list in: the byte
// order of the UTF-8 keys, which is also code point order.
func ByteOrder(a, b string) int { return strings.Compare(a, b) }

// UTF16Order compares keys by their UTF-16 code units, the order Azurite
// lists blobs in (JavaScript string comparison). It differs from byte
// order only where a character from U+E000 to U+FFFF meets a supplementary
// one (U+10000 and above) at the same position: "！" (U+FF01) sorts after
// "😀" (U+1F600) here, before it in byte order.
func UTF16Order(a, b string) int {
	for i := 0; i < len(a) && i < len(b); {
		if a[i] == b[i] {
			i++
			continue
		}
		// Back up to the start of the rune the first differing byte is in.
		for i > 0 && !utf8.RuneStart(a[i]) {
			i--
		}
		ra, _ := utf8.DecodeRuneInString(a[i:])
		rb, _ := utf8.DecodeRuneInString(b[i:])
		if ra >= 0x10000 && rb >= 0x10000 {
			return int(ra) - int(rb)
		}
		return int(utf16Unit(ra)) - int(utf16Unit(rb))
	}
	return len(a) - len(b)
}

// utf16Unit is the first UTF-16 code unit of r.
func utf16Unit(r rune) rune {
	if r >= 0x10000 {
		return 0xD800 + (r-0x10000)>>10
	}
	return r
}

// Ordered is implemented by listers whose order is not ByteOrder; Sync
// then merges, and checks the old manifest, in that order.
type Ordered interface {
	Order() KeyOrder
}

// orderOf returns l's order.
func orderOf(l Lister) KeyOrder {
	if o, ok := l.(Ordered); ok && o.Order() != nil {
		return o.Order()
	}
	return ByteOrder
}
