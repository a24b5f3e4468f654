package audit

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the audit trail's Prometheus metrics. Make them once per
// registry (NewMetrics) and hand them to every Auditor built on it, so a
// config reload that builds a new Auditor does not register them twice.
type Metrics struct {
	written, dropped      prometheus.Counter
	hookSent, hookDrop    prometheus.Counter
	hookFailures          prometheus.Counter
	current               atomic.Pointer[Auditor] // whose queue the gauges read
	queueDepth, hookDepth prometheus.GaugeFunc
}

// NewMetrics registers the audit metrics on reg (none when reg is nil):
//
//	edge_audit_records_total{result="written"}  records written to the file (or stdout), or delivered to the webhook when it is the only sink
//	edge_audit_records_total{result="dropped"}  records lost anywhere: queue full, a failed write, the webhook's buffer full, or still unsent at Close
//	edge_audit_queue_depth                      records waiting for the writer
//	edge_audit_webhook_records_total{result="delivered|dropped"}
//	edge_audit_webhook_buffer_depth             records waiting for the webhook
//	edge_audit_webhook_failures_total           webhook POSTs that failed (each attempt)
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{}
	records := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "edge_audit_records_total",
		Help: "Audit records by result: written (to the file or stdout, or to the webhook when it is the only sink) or dropped (lost anywhere).",
	}, []string{"result"})
	m.written = records.WithLabelValues("written")
	m.dropped = records.WithLabelValues("dropped")
	hook := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "edge_audit_webhook_records_total",
		Help: "Audit records for the webhook by result: delivered (answered 2xx) or dropped (its buffer was full, or Close's deadline passed).",
	}, []string{"result"})
	m.hookSent = hook.WithLabelValues("delivered")
	m.hookDrop = hook.WithLabelValues("dropped")
	m.hookFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "edge_audit_webhook_failures_total",
		Help: "Audit webhook POSTs that failed (every attempt: network errors, timeouts, non-2xx answers).",
	})
	m.queueDepth = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "edge_audit_queue_depth",
		Help: "Audit records waiting for the writer.",
	}, func() float64 {
		if a := m.current.Load(); a != nil {
			return float64(len(a.ch))
		}
		return 0
	})
	m.hookDepth = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "edge_audit_webhook_buffer_depth",
		Help: "Audit records waiting for the webhook.",
	}, func() float64 {
		if a := m.current.Load(); a != nil && a.hook != nil {
			return float64(a.hook.depth())
		}
		return 0
	})
	if reg != nil {
		reg.MustRegister(records, hook, m.hookFailures, m.queueDepth, m.hookDepth)
	}
	return m
}
