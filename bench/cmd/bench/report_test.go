package main

import (
	"math"
	"testing"

	"github.com/edgeproxy/edge/bench/internal/load"
)

func TestSpreadOf(t *testing.T) {
	tests := []struct {
		in   []float64
		want spread
	}{
		{[]float64{3, 1, 2}, spread{med: 2, min: 1, max: 3, n: 3}},
		{[]float64{4, 1, 2, 3}, spread{med: 2.5, min: 1, max: 4, n: 4}},
		{[]float64{math.NaN(), 5}, spread{med: 5, min: 5, max: 5, n: 1}},
	}
	for _, tt := range tests {
		if got := spreadOf(tt.in); got != tt.want {
			t.Errorf("spreadOf(%v) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
	if got := spreadOf(nil); got.n != 0 || got.fmt("%.2f") != "n/a" {
		t.Errorf("spreadOf(nil) = %+v, want n = 0 and n/a", got)
	}
}

func TestRatioPairsRounds(t *testing.T) {
	s := func(round int, rps float64) *sample { return &sample{round: round, res: &load.Result{RPS: rps}} }
	b := &bench{results: map[string][]*sample{
		"edge":  {s(1, 80), s(2, 45), s(3, 90)},
		"floor": {s(1, 100), s(2, 50) /* round 3 failed */},
	}}
	got := b.ratio("edge", "floor", rps)
	want := spread{med: 0.85, min: 0.8, max: 0.9, n: 2}
	if math.Abs(got.med-want.med) > 1e-9 || got.min != want.min || got.max != want.max || got.n != want.n {
		t.Errorf("ratio = %+v, want %+v (round 3 has no floor and is left out)", got, want)
	}
}
