package worker

import (
	"errors"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/hibiken/asynq"

	"github.com/sapq/sapq/sap"
)

// RetryPolicy is exponential backoff with jitter between attempts, stretched
// to any Retry-After that SAP or a gateway sent.
type RetryPolicy struct {
	Initial    time.Duration // delay before the first retry; default 5s
	Max        time.Duration // cap on one delay; default 30m
	Multiplier float64       // growth per attempt; default 2
	Jitter     float64       // randomization factor in [0,1); default 0.3
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.Initial <= 0 {
		p.Initial = 5 * time.Second
	}
	if p.Max <= 0 {
		p.Max = 30 * time.Minute
	}
	if p.Multiplier < 1 {
		p.Multiplier = 2
	}
	if p.Jitter < 0 || p.Jitter >= 1 {
		p.Jitter = 0.3
	}
	return p
}

// Delay is the wait before retry n (0 = first retry) after err. asynq calls
// it without state, so the backoff is rebuilt and advanced n+1 times; that
// costs nothing next to a SAP call.
func (p RetryPolicy) Delay(n int, err error) time.Duration {
	var wait *waitError
	if errors.As(err, &wait) {
		return wait.after // not a failure: no backoff
	}
	p = p.withDefaults()
	b := &backoff.ExponentialBackOff{
		InitialInterval:     p.Initial,
		RandomizationFactor: p.Jitter,
		Multiplier:          p.Multiplier,
		MaxInterval:         p.Max,
		MaxElapsedTime:      0, // never stop: asynq's MaxRetry decides when to give up
		Stop:                backoff.Stop,
		Clock:               backoff.SystemClock,
	}
	b.Reset()
	d := p.Initial
	for range n + 1 {
		d = b.NextBackOff()
	}
	// Honour Retry-After, within reason: a gateway asking for a day does not
	// get to park a posting longer than the policy's longest wait.
	if after := min(sap.RetryAfterOf(err), p.Max); after > d {
		d = after
	}
	return d
}

// RetryDelayFunc adapts the policy to asynq.
func (p RetryPolicy) RetryDelayFunc() asynq.RetryDelayFunc {
	return func(n int, err error, _ *asynq.Task) time.Duration { return p.Delay(n, err) }
}

// waitError asks for another attempt after a wait that is not a failure of
// the job: the previous attempt's call may still be settling in SAP, or a
// concurrent delivery holds the job.
type waitError struct {
	reason string
	after  time.Duration
}

func (e *waitError) Error() string { return e.reason }

// isFailure tells asynq which errors spend the retry budget. In asynq
// v0.26.0 a non-failure goes to the retry set with RetryDelayFunc's delay
// and an unchanged Retried count (processor.retry, rdb.Retry); but a task
// whose Retried has reached its MaxRetry is archived whatever the error
// (processor.handleFailedMessage), which is why the last attempt waits in
// the handler (ProcessTask).
func isFailure(err error) bool {
	var w *waitError
	return !errors.As(err, &w)
}
