package testenv

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest/observer"
)

// NoSecrets fails tb when a log entry (its message and fields) or a metric
// gathered from reg holds one of secrets.
func NoSecrets(tb testing.TB, logs *observer.ObservedLogs, reg prometheus.Gatherer, secrets ...string) {
	tb.Helper()
	var all strings.Builder
	for _, e := range logs.All() {
		all.WriteString(e.Message)
		for k, v := range e.ContextMap() {
			fmt.Fprintf(&all, " %s=%v", k, v)
		}
		all.WriteByte('\n')
	}
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, mf := range mfs {
		all.WriteString(mf.String())
	}
	for _, s := range secrets {
		if strings.Contains(all.String(), s) {
			tb.Errorf("a log line or metric contains the secret %q", s)
		}
	}
}
