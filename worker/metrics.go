package worker

import (
	"context"
	"errors"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sapq/sapq/sap"
	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/ledger"
)

// metrics are the worker's Prometheus series. asynq's own exporter gives
// queue sizes; these give what it cannot: outcomes per kind, SAP latency and
// how unknown outcomes were settled.
type metrics struct {
	finishedTotal   *prometheus.CounterVec
	retriesTotal    *prometheus.CounterVec
	sapCallSeconds  *prometheus.HistogramVec
	reconciledTotal *prometheus.CounterVec
	waitsTotal      *prometheus.CounterVec
	// Serialisation toward SAP (locks.go).
	lockWaitsTotal        *prometheus.CounterVec
	destinationWaitsTotal *prometheus.CounterVec
	leasesLostTotal       prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, l *ledger.Ledger) *metrics {
	m := &metrics{
		finishedTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sapq_postings_finished_total", Help: "Postings that reached a final status, by kind, status and the SAP (or sapq) code of a failure.",
		}, []string{"kind", "status", "code"}),
		retriesTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sapq_posting_retries_total", Help: "Attempts that failed and will be tried again, by kind, error category and code.",
		}, []string{"kind", "category", "code"}),
		sapCallSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sapq_sap_call_seconds", Help: "Duration of SAP calls by kind, destination (SAP system), operation and error category.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
		}, []string{"kind", "destination", "op", "result"}),
		reconciledTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sapq_reconciliations_total", Help: "Look-ups in SAP before a call, by kind and result (found: the document was adopted; not_found; reversed; unreadable: SAP could not be read).",
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
		reg.MustRegister(m.finishedTotal, m.retriesTotal, m.sapCallSeconds, m.reconciledTotal, m.waitsTotal,
			m.lockWaitsTotal, m.destinationWaitsTotal, m.leasesLostTotal, newQueueCollector(l))
	}
	return m
}

func (m *metrics) finished(kind tasks.Kind, status tasks.Status, code string) {
	m.finishedTotal.WithLabelValues(string(kind), string(status), code).Inc()
}

func (m *metrics) retried(kind tasks.Kind, e tasks.JobError) {
	m.retriesTotal.WithLabelValues(string(kind), string(e.Category), e.Code).Inc()
}

func (m *metrics) sapCall(kind tasks.Kind, destination, op string, start time.Time, err error) {
	result := "ok"
	if err != nil {
		result = sap.CategoryOf(err).String()
	}
	m.sapCallSeconds.WithLabelValues(string(kind), destination, op, result).Observe(time.Since(start).Seconds())
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

// queueCollector reports, at each scrape, the queue's size by state, the
// age of its oldest pending posting and how many postings wait for an
// operator's approval. Every worker reports the same values (they are
// Redis's): aggregate them with max, never sum.
type queueCollector struct {
	ledger    *ledger.Ledger
	size      *prometheus.Desc
	oldest    *prometheus.Desc
	approvals *prometheus.Desc
	up        *prometheus.Desc
}

func newQueueCollector(l *ledger.Ledger) *queueCollector {
	return &queueCollector{
		ledger:    l,
		size:      prometheus.NewDesc("sapq_queue_size", "Postings in the queue, by state (pending, active, scheduled, retry, archived).", []string{"queue", "state"}, nil),
		oldest:    prometheus.NewDesc("sapq_queue_oldest_pending_seconds", "Age of the oldest pending posting in the queue.", []string{"queue"}, nil),
		approvals: prometheus.NewDesc("sapq_approvals_waiting", "Postings waiting for an operator's approval.", nil, nil),
		up:        prometheus.NewDesc("sapq_queue_scrape_ok", "1 when the queue's state could be read from Redis at this scrape.", nil, nil),
	}
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.size
	ch <- c.oldest
	ch <- c.approvals
	ch <- c.up
}

// queueScrapeTimeout bounds a scrape's reads of Redis.
const queueScrapeTimeout = 5 * time.Second

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ok := 1.0
	q := c.ledger.Queue()
	info, err := c.ledger.Inspector().GetQueueInfo(q)
	switch {
	case err == nil:
		for state, n := range map[string]int{"pending": info.Pending, "active": info.Active, "scheduled": info.Scheduled, "retry": info.Retry, "archived": info.Archived} {
			ch <- prometheus.MustNewConstMetric(c.size, prometheus.GaugeValue, float64(n), q, state)
		}
		ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, info.Latency.Seconds(), q)
	case errors.Is(err, asynq.ErrQueueNotFound):
		// No posting was ever queued: an empty queue.
		for _, state := range []string{"pending", "active", "scheduled", "retry", "archived"} {
			ch <- prometheus.MustNewConstMetric(c.size, prometheus.GaugeValue, 0, q, state)
		}
		ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, 0, q)
	default:
		ok = 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), queueScrapeTimeout)
	defer cancel()
	if _, waiting, err := c.ledger.Approvals(ctx, 1); err == nil {
		ch <- prometheus.MustNewConstMetric(c.approvals, prometheus.GaugeValue, float64(waiting))
	} else {
		ok = 0
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, ok)
}
