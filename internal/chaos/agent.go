package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/sapq/sapq/internal/testutil"
	"github.com/sapq/sapq/mcpfront"
	"github.com/sapq/sapq/tasks"
)

// Tool error codes an agent acts on (mcpfront's "sapq/error" codes).
const (
	codeNotFound    = "not_found"
	codeInternal    = "internal"
	codeConflict    = "idempotency_conflict"
	codeRateLimited = "rate_limited"
	codeInvalid     = "invalid_argument"
)

// toolError is the "sapq/error" of a failed tool call: what an agent reads
// to decide what to do.
type toolError struct {
	Code              string `json:"code"`
	Message           string `json:"message"`
	RetryAfterSeconds int    `json:"retry_after_seconds"`
	Fields            []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"fields"`
}

// detail is the message with its field errors.
func (e toolError) detail() string {
	s := e.Message
	for _, f := range e.Fields {
		s += " " + f.Field + ": " + f.Message + ";"
	}
	return s
}

// retryAfter is how long to wait before calling again: what the tool said
// (rate_limited), or a short pause.
func (e toolError) retryAfter() time.Duration {
	return max(time.Duration(e.RetryAfterSeconds)*time.Second, pause())
}

// callTimeout bounds one MCP call; a call that runs out is retried.
const callTimeout = 10 * time.Second

// agent is one caller with its own token and MCP session, as an AI agent
// would have: it submits its keys, follows each job with get_posting until
// it ends, and resubmits a key whose job the ledger no longer knows. Like a
// real client it opens a new session when a call fails: the SDK's
// Streamable HTTP connection fails for good on some errors (a response body
// cut short by a call's timeout), and every call on it fails from then on.
type agent struct {
	caller string
	log    *slog.Logger
	// harnessErr receives what must stop the run: a tool answer no agent
	// should ever get (a posting the harness made refused as invalid).
	harnessErr func(error)
	connect    func(context.Context) (*sdk.ClientSession, error)
	tr         *http.Transport

	mu       sync.Mutex
	cs       *sdk.ClientSession
	renewals int
	errs     map[string]int // call errors by message
}

func dialAgent(ctx context.Context, url, caller, token string, log *slog.Logger) (*agent, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	c := sdk.NewClient(&sdk.Implementation{Name: "sapq-chaos-" + caller, Version: "1"}, nil)
	a := &agent{caller: caller, log: log.With("agent", caller), tr: tr, errs: map[string]int{}}
	a.connect = func(ctx context.Context) (*sdk.ClientSession, error) {
		ctx, cancel := context.WithTimeout(ctx, callTimeout)
		defer cancel()
		return c.Connect(ctx, &sdk.StreamableClientTransport{
			Endpoint:             url,
			HTTPClient:           &http.Client{Transport: testutil.Bearer{Token: token, Next: tr}},
			DisableStandaloneSSE: true,
		}, nil)
	}
	var err error
	if a.cs, err = a.connect(ctx); err != nil {
		return nil, fmt.Errorf("chaos: agent %s: connect to MCP: %w", caller, err)
	}
	return a, nil
}

func (a *agent) session() *sdk.ClientSession {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cs
}

// failed notes a call that failed on session cs and replaces cs with a new
// session, unless another call did so already. Calls wait for the new
// session meanwhile; one that cannot be opened is tried on the next failure.
func (a *agent) failed(ctx context.Context, cs *sdk.ClientSession, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200]
	}
	if a.errs[msg]++; a.errs[msg] == 1 {
		a.log.Warn("MCP call failed", "err", msg)
	}
	if a.cs != cs || ctx.Err() != nil {
		return
	}
	next, err := a.connect(ctx)
	if err != nil {
		a.log.Warn("new MCP session failed", "err", err)
		return
	}
	a.renewals++
	go cs.Close() // its DELETE may wait for a server that is busy
	a.cs = next
}

// counts are the agent's session renewals and failed calls.
func (a *agent) counts() (renewals, errs int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, n := range a.errs {
		errs += n
	}
	return a.renewals, errs
}

// close ends the session and drops idle connections: the MCP front's
// graceful shutdown would wait for them.
func (a *agent) close() {
	a.session().Close()
	a.tr.CloseIdleConnections()
}

// call calls a tool and decodes its structured result into out. It returns
// the tool's error when the tool answered with one (Code set), or err when
// the call itself failed (transport, timeout).
func (a *agent) call(ctx context.Context, tool string, args any, out any) (toolError, error) {
	callCtx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	cs := a.session()
	res, err := cs.CallTool(callCtx, &sdk.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		a.failed(ctx, cs, err)
		return toolError{}, err
	}
	if res.IsError {
		var te toolError
		if raw, ok := res.Meta["sapq/error"]; ok {
			b, _ := json.Marshal(raw)
			json.Unmarshal(b, &te)
		}
		if te.Code == "" {
			te.Code = "unknown"
			for _, c := range res.Content {
				if t, ok := c.(*sdk.TextContent); ok {
					te.Message += t.Text
				}
			}
		}
		return te, nil
	}
	b, err := json.Marshal(res.StructuredContent)
	if err == nil {
		err = json.Unmarshal(b, out)
	}
	if err != nil {
		return toolError{}, fmt.Errorf("%s: unreadable result: %w", tool, err)
	}
	return toolError{}, nil
}

// keyRun is a key while its agent works on it: the outcome, guarded
// because a key's copies are submitted from several goroutines.
type keyRun struct {
	mu      sync.Mutex
	out     outcome
	current string // the job the latest submission answered; followed by polls
	// pollAfter is the wait between polls that sapq asked for.
	pollAfter time.Duration
	// original is, for a reversal, the key whose document it reverses;
	// done is closed once the key's run ended, for a reversal of it to
	// wait on.
	original *keyRun
	done     chan struct{}
}

// args are the arguments of the key's submission: the plan's, and for a
// reversal the job of its original as the agent knows it now.
func (k *keyRun) args() (json.RawMessage, error) {
	plan := k.out.plan
	if k.original == nil {
		return plan.Args, nil
	}
	var m map[string]any
	if err := json.Unmarshal(plan.Args, &m); err != nil {
		return nil, err
	}
	m["job_id"] = k.original.job()
	return json.Marshal(m)
}

func (k *keyRun) poll() time.Duration {
	k.mu.Lock()
	defer k.mu.Unlock()
	return max(k.pollAfter, 200*time.Millisecond)
}

func (k *keyRun) job() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.current
}

// pause is how long an agent waits before retrying a call that failed.
func pause() time.Duration { return 200*time.Millisecond + rand.N(300*time.Millisecond) }

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// submit sends the key's posting until sapq answers with a job, and makes
// that job the one followed. It returns the job ID, or "" if the run ended
// or the key was refused.
func (a *agent) submit(ctx context.Context, k *keyRun) string {
	plan := k.out.plan
	refusals := 0
	for ctx.Err() == nil {
		var res mcpfront.SubmitResult
		args, err := k.args()
		if err != nil {
			a.harnessErr(fmt.Errorf("chaos: arguments of key %s: %w", plan.Key, err))
			return ""
		}
		te, err := a.call(ctx, plan.Spec.tool, args, &res)
		switch {
		case err != nil || te.Code == codeInternal || te.Code == codeRateLimited:
			// Redis restarting, the call cut short, or too many calls: an
			// agent sends the same key and payload again, later.
			sleep(ctx, te.retryAfter())
			continue
		case te.Code == codeInvalid && k.original != nil && refusals < maxReversalRefusals:
			// The original's job is not (or no longer) succeeded in the
			// ledger: Redis lost it, or rolled it back. An agent follows
			// the original again (resubmitting it if it is gone) and names
			// the job that answers.
			refusals++
			a.log.Info("reversal refused; following its original again", "key", plan.Key, "original", k.original.out.plan.Key, "error", te.detail())
			a.follow(ctx, k.original)
			continue
		case te.Code == codeConflict:
			k.mu.Lock()
			k.out.conflict = te.Message
			k.mu.Unlock()
			return ""
		case te.Code != "":
			a.harnessErr(fmt.Errorf("chaos: %s refused key %s: %s: %s", plan.Spec.tool, plan.Key, te.Code, te.detail()))
			return ""
		}
		k.mu.Lock()
		k.out.submissions++
		k.out.addJob(res.JobID)
		k.current = res.JobID
		k.pollAfter = time.Duration(res.PollAfterSeconds) * time.Second
		k.mu.Unlock()
		return res.JobID
	}
	return ""
}

// maxReversalRefusals is how often a reversal refused for its original's
// job is retried after following the original again.
const maxReversalRefusals = 5

// maxPollEvery caps the wait between polls of a job that takes long.
const maxPollEvery = 10 * time.Second

// follow polls the key's job until it is terminal. On not_found it
// resubmits the key, as an agent whose job vanished does, and follows the
// job that answers. It returns the last state read and whether it is
// terminal: the run may end first. It polls first after the wait sapq
// asked for, then less and less often, as a patient agent does: polls
// that kept their pace while a backlog grew would multiply with it.
func (a *agent) follow(ctx context.Context, k *keyRun) (last *mcpfront.Posting, ended bool) {
	every, polled := k.poll(), ""
	for ctx.Err() == nil {
		id := k.job()
		if id == "" {
			if id = a.submit(ctx, k); id == "" {
				return last, false
			}
		}
		var p mcpfront.Posting
		te, err := a.call(ctx, mcpfront.ToolGetPosting, map[string]string{"job_id": id}, &p)
		switch {
		case err != nil || te.Code == codeInternal || te.Code == codeRateLimited:
			sleep(ctx, te.retryAfter())
			continue
		case te.Code == codeNotFound:
			last = nil
			k.mu.Lock()
			k.out.notFound++
			stale := k.current != id // a copy's submission already answered another job
			if !stale {
				k.out.resubmits++
			}
			k.mu.Unlock()
			if !stale && a.submit(ctx, k) == "" {
				return nil, false
			}
			continue
		case te.Code != "":
			a.harnessErr(fmt.Errorf("chaos: get_posting %s of key %s: %s: %s", id, k.out.plan.Key, te.Code, te.Message))
			return last, false
		}
		if k.job() != id {
			continue // a copy's submission answered another job meanwhile: follow that one
		}
		last = &p
		if p.Status.Terminal() {
			return last, true
		}
		if polled != id {
			every, polled = k.poll(), id
		}
		sleep(ctx, every)
		every = min(every*3/2, maxPollEvery)
	}
	return last, false
}

// run works one key: its first submission (with its copies, together or
// later), then following the job to its end. It reports whether the job
// ended before the run did.
func (a *agent) run(ctx context.Context, k *keyRun) bool {
	defer close(k.done)
	plan := k.out.plan
	if o := k.original; o != nil {
		// A reversal names its original's job once that succeeded.
		select {
		case <-o.done:
		case <-ctx.Done():
			return false
		}
		o.mu.Lock()
		seen := o.out.seen
		o.mu.Unlock()
		if seen == nil || seen.Status != tasks.StatusSucceeded {
			k.mu.Lock()
			k.out.skipped = "its original did not succeed"
			k.mu.Unlock()
			return true
		}
	}
	var copies sync.WaitGroup
	if plan.Concurrent {
		for range plan.Copies - 1 {
			copies.Go(func() { a.submit(ctx, k) })
		}
		a.submit(ctx, k)
	} else {
		a.submit(ctx, k)
		copies.Go(func() {
			for _, d := range plan.Delays {
				if !sleep(ctx, d) {
					return
				}
				a.submit(ctx, k)
			}
		})
	}
	last, ended := a.follow(ctx, k)
	copies.Wait()
	if ended {
		k.mu.Lock()
		k.out.seen = last
		k.mu.Unlock()
	}
	return ended
}

// audit reads the key's job once more at the end of the run, following it
// again (resubmitting if it is gone) until it is terminal; the state read
// last is the key's final one.
func (a *agent) audit(ctx context.Context, k *keyRun) (changed bool) {
	k.mu.Lock()
	if k.out.skipped != "" {
		k.mu.Unlock()
		return false
	}
	prev, resubmits := k.out.final, k.out.resubmits
	if prev == nil {
		prev = k.out.seen
	}
	k.mu.Unlock()
	p, _ := a.follow(ctx, k)
	k.mu.Lock()
	defer k.mu.Unlock()
	k.out.final = p
	return !samePosting(p, prev) || k.out.resubmits != resubmits
}

func samePosting(a, b *mcpfront.Posting) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.JobID == b.JobID && a.Status == b.Status && a.UpdatedAt.Equal(b.UpdatedAt)
}
