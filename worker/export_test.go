package worker

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
)

// Gate exposes the serialisation toward SAP (locks.go) to the package's
// tests of its leases.
type Gate struct{ g *gate }

// NewGate is a gate whose leases last lease, with at most maxInFlight calls
// per destination (0: no cap).
func NewGate(rdb redis.UniversalClient, lease time.Duration, maxInFlight int) *Gate {
	return &Gate{&gate{rdb: rdb, lease: lease, maxInFlight: maxInFlight, retry: 10 * time.Millisecond,
		metrics: newMetrics(nil, nil), log: slog.New(slog.DiscardHandler)}}
}

// Pass is the leases of one attempt.
type Pass struct{ p *pass }

func (g *Gate) Enter(ctx context.Context, jobID string, objects []string, destination string) (*Pass, error) {
	p, err := g.g.enter(ctx, jobID, objects, destination)
	if err != nil {
		return nil, err
	}
	return &Pass{p}, nil
}

func (p *Pass) Confirm(ctx context.Context) error { return p.p.confirm(ctx) }
func (p *Pass) Sent(began time.Time, err error)   { p.p.sent(began, err) }
func (p *Pass) Release()                          { p.p.release() }
func (p *Pass) Token() string                     { return p.p.token }

// Die stops the renewals without giving anything back, as a worker that
// was killed.
func (p *Pass) Die() {
	if p.p.holds() {
		p.p.stopRenewing()
	}
}

// IsWait reports whether err asks for a later attempt without spending the
// retry budget.
func IsWait(err error) bool {
	var w *waitError
	return errors.As(err, &w)
}

var (
	LockKey     = lockKey
	InFlightKey = inFlightKey
)

// RecoverPass runs one pass of the recoverer of dead workers' tasks
// (recover.go) at the given time.
func RecoverPass(ctx context.Context, rdb redis.UniversalClient, queue string, after time.Duration, now time.Time) ([]string, error) {
	r := newRecoverer(rdb, queue, after, slog.New(slog.DiscardHandler))
	r.now = func() time.Time { return now }
	return r.pass(ctx)
}
