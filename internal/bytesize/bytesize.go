// Package bytesize reads sizes such as "100MiB" from the config.
package bytesize

import (
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Size is a number of bytes. In YAML (and text) it is a plain integer or a
// number with a unit: B, KB, MB, GB, TB (powers of 1000), KiB, MiB, GiB,
// TiB (powers of 1024), or K, M, G, T (taken as the binary units, as
// operators usually mean them); case does not matter, a space may precede
// the unit, fractions are allowed ("1.5GiB").
//
// A value that is not a size decodes as Invalid instead of failing the
// whole file, so the section's Validate can name the key without echoing
// the value.
type Size int64

// Invalid is what a malformed size decodes to.
const Invalid Size = -1

// Units.
const (
	KiB Size = 1 << 10
	MiB Size = 1 << 20
	GiB Size = 1 << 30
	TiB Size = 1 << 40
)

var units = map[string]float64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

// Parse reads a size; ok is false when s is not one (negative, too large,
// or an unknown unit).
func Parse(s string) (Size, bool) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	if i == 0 {
		return 0, false
	}
	num, unit := s[:i], strings.ToLower(strings.TrimSpace(s[i:]))
	mult, ok := units[unit]
	if !ok {
		return 0, false
	}
	if n, err := strconv.ParseInt(num, 10, 64); err == nil {
		if m := int64(mult); float64(m) == mult && (n == 0 || m <= math.MaxInt64/n) {
			return Size(n * m), true
		}
		return 0, false
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 {
		return 0, false
	}
	v := math.Round(f * mult)
	if v >= math.MaxInt64 {
		return 0, false
	}
	return Size(v), true
}

// UnmarshalText decodes a size, or Invalid.
func (s *Size) UnmarshalText(b []byte) error {
	v, ok := Parse(string(b))
	if !ok {
		v = Invalid
	}
	*s = v
	return nil
}

// UnmarshalYAML decodes a scalar size, or Invalid.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		*s = Invalid
		return nil
	}
	return s.UnmarshalText([]byte(n.Value))
}

// MarshalText writes the size in bytes.
func (s Size) MarshalText() ([]byte, error) {
	return strconv.AppendInt(nil, int64(s), 10), nil
}

// String is the size with the largest binary unit that divides it.
func (s Size) String() string {
	for _, u := range []struct {
		n    Size
		name string
	}{{TiB, "TiB"}, {GiB, "GiB"}, {MiB, "MiB"}, {KiB, "KiB"}} {
		if s >= u.n && s%u.n == 0 {
			return strconv.FormatInt(int64(s/u.n), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10) + "B"
}
