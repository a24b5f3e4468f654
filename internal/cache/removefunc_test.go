package cache

import (
	"context"
	"testing"
	"time"
)

func TestLoaderRemoveFunc(t *testing.T) {
	now := time.Unix(1000, 0)
	l, err := NewLoader[int, string](100)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		_, _, _, err := l.Get(context.Background(), i, func() time.Time { return now }, func(context.Context) (string, time.Time, error) {
			return "v", now.Add(time.Hour), nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name      string
		drop      func(int) bool
		removed   int
		remaining int
	}{
		{"none", func(int) bool { return false }, 0, 10},
		{"odd", func(k int) bool { return k%2 == 1 }, 5, 5},
		{"odd again", func(k int) bool { return k%2 == 1 }, 0, 5},
		{"all", func(int) bool { return true }, 5, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n := l.RemoveFunc(tt.drop); n != tt.removed {
				t.Errorf("removed %d, want %d", n, tt.removed)
			}
			if l.Len() != tt.remaining {
				t.Errorf("Len %d, want %d", l.Len(), tt.remaining)
			}
		})
	}
	if _, _, ok := l.Cached(1, now); ok {
		t.Error("a removed key is still cached")
	}
}
