package limit

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the limiter's Prometheus metrics. Make them once per
// registry and hand them to every Limiter built on it (a config reload
// builds a new one).
type Metrics struct {
	limited   *prometheus.CounterVec
	redisUp   prometheus.Gauge
	fallbacks prometheus.Counter
	throttled prometheus.Counter
}

// NewMetrics registers the limiter's metrics on reg (none when reg is nil):
//
//	edge_limit_limited_total{source}          requests refused with 429 rate_limited
//	edge_limit_redis_up                       1 while Redis keeps the budgets, 0 while the local fallback does (or no Redis is configured)
//	edge_limit_redis_fallbacks_total          requests decided locally because Redis was unreachable
//	edge_limit_stream_throttled_seconds_total time streams spent waiting on bytes_per_second
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edge_limit_limited_total",
			Help: "Object requests refused because the subject's rate limit was spent, by source.",
		}, []string{"source"}),
		redisUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "edge_limit_redis_up",
			Help: "1 while Redis keeps the per-subject budgets, 0 while each replica falls back to its own (or no Redis is configured).",
		}),
		fallbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "edge_limit_redis_fallbacks_total",
			Help: "Rate-limit decisions made locally because Redis was unreachable.",
		}),
		throttled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "edge_limit_stream_throttled_seconds_total",
			Help: "Time streams spent waiting on their subject's bytes_per_second budget.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.limited, m.redisUp, m.fallbacks, m.throttled)
	}
	return m
}
