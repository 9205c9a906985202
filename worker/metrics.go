package worker

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sapq/sapq/sap"
	"github.com/sapq/sapq/tasks"
)

// metrics are the worker's Prometheus series. asynq's own exporter gives
// queue sizes; these give what it cannot: outcomes per kind, SAP latency and
// how unknown outcomes were settled.
type metrics struct {
	finishedTotal   *prometheus.CounterVec
	sapCallSeconds  *prometheus.HistogramVec
	reconciledTotal *prometheus.CounterVec
	waitsTotal      *prometheus.CounterVec
	// Serialisation toward SAP (locks.go).
	lockWaitsTotal        *prometheus.CounterVec
	destinationWaitsTotal *prometheus.CounterVec
	leasesLostTotal       prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		finishedTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sapq_postings_finished_total", Help: "Postings that reached a final status, by kind and status.",
		}, []string{"kind", "status"}),
		sapCallSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sapq_sap_call_seconds", Help: "Duration of SAP calls by kind, operation and error category.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
		}, []string{"kind", "op", "result"}),
		reconciledTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sapq_reconciliations_total", Help: "Look-ups in SAP before a call, by kind and result (adopted, absent, reversed, unreadable).",
		}, []string{"kind", "result"}),
		waitsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sapq_protocol_waits_total", Help: "Attempts put off without spending the retry budget, by reason (settle: an earlier call may be in flight; loss_window: Redis lost writes; concurrent: another delivery is sending).",
		}, []string{"reason"}),
		lockWaitsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sapq_lock_waits_total", Help: "Attempts put back in the queue, without spending the retry budget, because another job was posting one of their SAP objects, by the object's domain (supplier, customer, ...).",
		}, []string{"domain"}),
		destinationWaitsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sapq_destination_waits_total", Help: "Attempts put back in the queue, without spending the retry budget, because their SAP destination had the most calls in flight allowed, by destination.",
		}, []string{"destination"}),
		leasesLostTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sapq_lock_leases_lost_total", Help: "Leases of SAP objects or destination call slots found no longer held by the attempt holding them (Redis lost them, or renewals failed for a whole lease).",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.finishedTotal, m.sapCallSeconds, m.reconciledTotal, m.waitsTotal,
			m.lockWaitsTotal, m.destinationWaitsTotal, m.leasesLostTotal)
	}
	return m
}

func (m *metrics) finished(kind tasks.Kind, status tasks.Status) {
	m.finishedTotal.WithLabelValues(string(kind), string(status)).Inc()
}

func (m *metrics) sapCall(kind tasks.Kind, op string, start time.Time, err error) {
	result := "ok"
	if err != nil {
		result = sap.CategoryOf(err).String()
	}
	m.sapCallSeconds.WithLabelValues(string(kind), op, result).Observe(time.Since(start).Seconds())
}

func (m *metrics) reconciled(kind tasks.Kind, result string) {
	m.reconciledTotal.WithLabelValues(string(kind), result).Inc()
}

func (m *metrics) waited(reason string) { m.waitsTotal.WithLabelValues(reason).Inc() }

func (m *metrics) lockWait(domain string) { m.lockWaitsTotal.WithLabelValues(domain).Inc() }

func (m *metrics) destinationWait(destination string) {
	m.destinationWaitsTotal.WithLabelValues(destination).Inc()
}

func (m *metrics) leaseLost() { m.leasesLostTotal.Inc() }
