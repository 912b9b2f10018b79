// Package metrics owns writ's Prometheus metrics: request counts and
// latency per component and operation, audit-event counts (which cover
// sign-ins, lockouts, exchanges and gateway decisions, since every decision
// is an audit event), and gauges read from the components (JWKS fetches,
// verified-token cache, signing-key ages).
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/writ-id/writ/internal/audit"
	"github.com/writ-id/writ/internal/tracing"
)

// Metrics is one registry and writ's collectors in it.
type Metrics struct {
	Registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	events   *prometheus.CounterVec
}

// New returns a registry with the process and Go collectors and writ's own.
func New() *Metrics {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{Registry: r,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "writ_http_requests_total",
			Help: "HTTP requests served, by component, operation and status code."}, []string{"component", "operation", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "writ_http_request_duration_seconds",
			Help: "HTTP request latency, by component and operation.", Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}},
			[]string{"component", "operation"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "writ_audit_events_total",
			Help: "Audited decisions, by component, action and outcome (allow, deny, error): sign-ins, refreshes, exchanges, gateway authorizations…"},
			[]string{"component", "action", "outcome"}),
	}
	r.MustRegister(m.requests, m.duration, m.events)
	return m
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// Middleware counts and times the requests of one component. op names a
// request's operation; it must have few distinct values.
func (m *Metrics) Middleware(component string, op func(*http.Request) string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &tracing.StatusWriter{ResponseWriter: w, Code: http.StatusOK}
		next.ServeHTTP(rec, r)
		name := op(r)
		m.requests.WithLabelValues(component, name, strconv.Itoa(rec.Code)).Inc()
		m.duration.WithLabelValues(component, name).Observe(time.Since(start).Seconds())
	})
}

// Audit wraps an audit.Recorder so that every event is also counted.
func (m *Metrics) Audit(next audit.Recorder) audit.Recorder {
	return auditTee{m: m, next: next}
}

type auditTee struct {
	m    *Metrics
	next audit.Recorder
}

func (t auditTee) Record(ctx context.Context, e audit.Event) {
	action := e.Action
	if e.Component == "gateway" {
		action = "authorize" // route keys would multiply series; the route is in the audit row
	}
	t.m.events.WithLabelValues(e.Component, action, e.Outcome).Inc()
	t.next.Record(ctx, e)
}

// MailDeliveries registers the count of mail delivery attempts and returns
// the function that counts one, by outcome (sent, retry, failed,
// released).
func (m *Metrics) MailDeliveries() func(outcome string) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "writ_mail_deliveries_total",
		Help: "Attempts to deliver queued mail over SMTP, by outcome: sent, retry (tried again later), failed (given up), released (cut short by a stop)."}, []string{"outcome"})
	m.Registry.MustRegister(c)
	return func(outcome string) { c.WithLabelValues(outcome).Inc() }
}

// GaugeFunc registers a gauge computed at scrape time.
func (m *Metrics) GaugeFunc(name, help string, labels prometheus.Labels, f func() float64) {
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels}, f))
}

// CounterFunc registers a counter read at scrape time.
func (m *Metrics) CounterFunc(name, help string, labels prometheus.Labels, f func() float64) {
	m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels}, f))
}
