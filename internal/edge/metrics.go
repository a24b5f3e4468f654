package edge

import (
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Route and mode indexes for the hot path's metric lookups.
const (
	routeObject = iota // /v1/s
	routeURL           // /v1/u
	routeFile          // /v1/f
	routeSession
	routeOps // healthz, readyz, metrics
	routeDemo
	routeOther
	numRoutes
)

var routeNames = [numRoutes]string{"s", "u", "f", "session", "ops", "demo", "other"}

const (
	modeNone = iota
	modeRedirect
	modeStream
	numModes
)

var modeNames = [numModes]string{"none", ModeRedirect, ModeStream}

var statusCodes = [...]int{200, 204, 206, 302, 304, 400, 401, 403, 404, 405, 412, 416, 429, 499, 500, 502, 503, 504}

// metrics are the edge's Prometheus metrics, on a registry of its own.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  [numRoutes][numModes]prometheus.Observer
	byStatus [numRoutes][numModes][len(statusCodes) + 1]atomic.Pointer[prometheus.Counter]

	presignHit, presignMiss, presignError prometheus.Counter
	tokenHit, tokenMiss, tokenError       prometheus.Counter
	sourceUp                              *prometheus.GaugeVec
}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "edge_requests_total", Help: "Requests answered, by route, mode and status.",
	}, []string{"route", "mode", "status"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "edge_request_duration_seconds",
		Help:    "Time to answer (to the end of the body), by route and mode.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"route", "mode"})
	presign := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "edge_presign_cache_total", Help: "Presigned-URL cache lookups by result (hit, miss, error).",
	}, []string{"result"})
	tokens := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "edge_token_cache_total", Help: "Token checks by result (hit: verified before; miss: signature checked; error: refused).",
	}, []string{"result"})
	m.sourceUp = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "edge_source_up", Help: "1 while the source's credentials work (the periodic check), 0 while they fail.",
	}, []string{"source"})
	m.reg.MustRegister(m.requests, latency, presign, tokens, m.sourceUp)
	for r := range numRoutes {
		for md := range numModes {
			m.latency[r][md] = latency.WithLabelValues(routeNames[r], modeNames[md])
		}
	}
	m.presignHit, m.presignMiss, m.presignError = presign.WithLabelValues("hit"), presign.WithLabelValues("miss"), presign.WithLabelValues("error")
	m.tokenHit, m.tokenMiss, m.tokenError = tokens.WithLabelValues("hit"), tokens.WithLabelValues("miss"), tokens.WithLabelValues("error")
	return m
}

// request counts one answered request without allocating once its
// (route, mode, status) counter exists.
func (m *metrics) request(route, mode, status int, seconds float64) {
	m.latency[route][mode].Observe(seconds)
	i := len(statusCodes)
	for j, c := range statusCodes {
		if c == status {
			i = j
			break
		}
	}
	slot := &m.byStatus[route][mode][i]
	c := slot.Load()
	if c == nil {
		label := "other"
		if i < len(statusCodes) {
			label = strconv.Itoa(status)
		}
		counter := m.requests.WithLabelValues(routeNames[route], modeNames[mode], label)
		c = &counter
		slot.Store(c)
	}
	(*c).Inc()
}
