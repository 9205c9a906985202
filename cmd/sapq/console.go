package main

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sapq/sapq/sap"
	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/ledger"
)

// The console is sapq's own view for operators, beside the Asynq UI: the
// failed postings grouped by SAP's message, with a sample of each group,
// what a reprocess would send to SAP, and reprocess and discard for the
// whole group; one posting with its history; and the postings awaiting
// four-eyes approval. Plain server-rendered pages; the only script follows
// a running bulk action's progress.

//go:embed console.html console.css console.js
var consoleFiles embed.FS

// consoleOptions configures the console.
type consoleOptions struct {
	Ledger *ledger.Ledger
	// Redis holds sessions and bulk operations (the ledger's Redis).
	Redis redis.UniversalClient
	Auth  operatorAuth
	// Queues is the Asynq UI, mounted at /ui/ behind the console's login.
	Queues http.Handler
	// ReadOnly shows everything and changes nothing.
	ReadOnly bool
	// PublicURL is the console's URL as browsers see it, when a proxy
	// stands between (TLS terminated there): state-changing requests
	// must come from its origin, and an https URL makes cookies Secure.
	PublicURL  *url.URL
	SessionTTL time.Duration
	// SAP returns the configuration of a destination (BaseURL, Client,
	// Language, User; no secret is needed) that previews are built for;
	// Destination names the SAP system of postings not yet sent.
	SAP         func(destination string) (sap.Config, bool)
	Destination string
	Log, Audit  *slog.Logger
	Now         func() time.Time
}

type console struct {
	opts     consoleOptions
	sessions *sessionStore
	bulk     *bulkRunner
	pages    *template.Template
}

func newConsole(opts consoleOptions) (*console, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = 8 * time.Hour
	}
	if opts.Destination == "" {
		opts.Destination = tasks.DefaultDestination
	}
	if opts.SAP == nil {
		return nil, errors.New("console: Options.SAP is required")
	}
	if opts.Auth.token == "" && opts.Auth.callers.Len() == 0 {
		return nil, errors.New("no way to log in to the console: set SAPQ_UI_TOKEN (or _FILE), or give a callers file with operators (--callers-file)")
	}
	pages, err := template.New("console").Funcs(template.FuncMap{
		"age":  func(t time.Time) string { return age(opts.Now().Sub(t)) },
		"when": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
		"join": strings.Join,
	}).ParseFS(consoleFiles, "console.html")
	if err != nil {
		return nil, err
	}
	return &console{
		opts:     opts,
		sessions: &sessionStore{rdb: opts.Redis, ttl: opts.SessionTTL, now: opts.Now},
		bulk:     newBulkRunner(opts.Ledger, opts.Redis, opts.Log, opts.Audit),
		pages:    pages,
	}, nil
}

// Shutdown interrupts running bulk actions and waits for their records.
func (c *console) Shutdown() { c.bulk.Shutdown() }

// register mounts the console at /console/ and the Asynq UI at /ui/.
func (c *console) register(mux *http.ServeMux) {
	auth := func(h http.HandlerFunc) http.Handler { return c.authenticated(h) }
	act := func(h http.HandlerFunc) http.Handler { return c.authenticated(c.writable(h)) }
	mux.HandleFunc("GET /console/login", c.loginPage)
	mux.HandleFunc("POST /console/login", c.login)
	mux.Handle("POST /console/logout", auth(c.logout))
	mux.Handle("GET /console/{$}", auth(c.overview))
	mux.Handle("GET /console/group", auth(c.group))
	mux.Handle("POST /console/group/{action}", act(c.groupAction))
	mux.Handle("GET /console/jobs/{id}", auth(c.job))
	mux.Handle("POST /console/jobs/{id}/{action}", act(c.jobAction))
	mux.Handle("GET /console/ops/{id}", auth(c.operationPage))
	mux.Handle("GET /console/ops/{id}/status", auth(c.operationStatus))
	mux.Handle("GET /console/approvals", auth(c.approvals))
	mux.Handle("POST /console/approvals/{id}/{decision}", act(c.decide))
	mux.Handle("GET /console/static/", http.StripPrefix("/console/static/", http.FileServerFS(consoleFiles)))
	mux.Handle("/ui/", c.authenticated(c.audited(c.opts.Queues)))
	mux.Handle("GET /{$}", http.RedirectHandler("/console/", http.StatusFound))
}

// oneSAPSystem is the SAP configuration of every destination, where one
// SAP system is configured.
func oneSAPSystem(cfg sap.Config) func(string) (sap.Config, bool) {
	return func(string) (sap.Config, bool) { return cfg, true }
}

// writable refuses console actions in read-only mode.
func (c *console) writable(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if c.opts.ReadOnly {
			c.refuse(w, r, sessionOf(r), errors.New("the console is read-only (--read-only)"))
			return
		}
		next(w, r)
	}
}

// audited logs the Asynq UI's state-changing calls (run, delete, archive,
// pause) with the operator and the answer.
func (c *console) audited(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !stateChanging(r) {
			next.ServeHTTP(w, r)
			return
		}
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		c.opts.Audit.Info("console: asynq UI action", "operator", sessionOf(r).Operator, "method", r.Method, "path", r.URL.Path, "status", rec.status)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// page is what every page's layout needs.
type page struct {
	Title    string
	Operator string
	Named    bool
	CSRF     string
	ReadOnly bool
	Data     any
}

func (c *console) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	sess := sessionOf(r)
	var buf bytes.Buffer
	p := page{Title: name, Operator: sess.Operator, Named: sess.Named, CSRF: sess.CSRF, ReadOnly: c.opts.ReadOnly, Data: data}
	if err := c.pages.ExecuteTemplate(&buf, name, p); err != nil {
		c.opts.Log.Error("console: render", "page", name, "err", err)
		http.Error(w, "the page cannot be shown", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (c *console) fail(w http.ResponseWriter, r *http.Request, status int, err error) {
	if status >= 500 {
		c.opts.Log.Error("console", "path", r.URL.Path, "err", err)
	}
	c.render(w, r, status, "error", err.Error())
}

// posting is a job as the console lists it.
type postingRow struct {
	ID, Caller, Kind, Company, Amount, Reference, Status string
	Error                                                *tasks.JobError
	Job                                                  tasks.Job
}

func (c *console) postingOf(j tasks.Job) postingRow {
	p := postingRow{ID: j.ID, Caller: j.Caller, Kind: string(j.Kind), Company: ledger.CompanyCodeOf(j), Status: string(j.Status), Error: j.Error, Job: j}
	p.Reference = c.referenceOf(j)
	if pp, err := j.Posting(); err == nil {
		if f := pp.Facts(); !f.Amount.IsZero() {
			p.Amount = f.Amount.StringFixed(2) + " " + f.Currency
		}
	}
	return p
}

// referenceOf is the reference the job carries in SAP: its own once a call
// went out, else the one the configured destination gives it.
func (c *console) referenceOf(j tasks.Job) string {
	if j.Reference != "" {
		return j.Reference
	}
	return tasks.IdentityOf(&j, c.destinationOf(j)).Reference()
}

func (c *console) destinationOf(j tasks.Job) string {
	if j.Destination != "" {
		return j.Destination
	}
	return c.opts.Destination
}

type groupView struct {
	ledger.FailureGroup
	Sample postingRow
	Link   string
}

func groupLink(code, message string) string {
	return "/console/group?" + url.Values{"code": {code}, "message": {message}}.Encode()
}

func (c *console) overview(w http.ResponseWriter, r *http.Request) {
	groups, err := c.opts.Ledger.FailureGroups(r.Context(), ledger.Filter{})
	if err != nil {
		c.fail(w, r, http.StatusServiceUnavailable, err)
		return
	}
	_, waiting, err := c.opts.Ledger.Approvals(r.Context(), 1)
	if err != nil {
		c.fail(w, r, http.StatusServiceUnavailable, err)
		return
	}
	views := make([]groupView, len(groups))
	failed := 0
	for i, g := range groups {
		views[i] = groupView{FailureGroup: g, Sample: c.postingOf(g.Sample), Link: groupLink(g.Code, g.Message)}
		failed += g.Count
	}
	c.render(w, r, http.StatusOK, "overview", map[string]any{"Groups": views, "Failed": failed, "Waiting": waiting})
}

// maxGroupRows bounds the postings a group's page lists.
const maxGroupRows = 100

func (c *console) group(w http.ResponseWriter, r *http.Request) {
	code, message := r.URL.Query().Get("code"), r.URL.Query().Get("message")
	groups, err := c.opts.Ledger.FailureGroups(r.Context(), ledger.Filter{Code: code})
	if err != nil {
		c.fail(w, r, http.StatusServiceUnavailable, err)
		return
	}
	var g *ledger.FailureGroup
	for i := range groups {
		if groups[i].Code == code && groups[i].Message == message {
			g = &groups[i]
		}
	}
	if g == nil {
		c.render(w, r, http.StatusNotFound, "error", "No failed posting has this message (any more): reprocessed, discarded or expired.")
		return
	}
	var rows []postingRow
	errStop := errors.New("enough")
	err = c.opts.Ledger.Each(r.Context(), ledger.Filter{Status: tasks.StatusFailed, Code: code}, func(j tasks.Job) error {
		if !inGroup(j, code, message) {
			return nil
		}
		rows = append(rows, c.postingOf(j))
		if len(rows) == maxGroupRows {
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		c.fail(w, r, http.StatusServiceUnavailable, err)
		return
	}
	c.render(w, r, http.StatusOK, "group", map[string]any{
		"Group": groupView{FailureGroup: *g, Sample: c.postingOf(g.Sample), Link: groupLink(code, message)},
		"Rows":  rows, "More": g.Count > len(rows),
		"Preview": c.preview(r.Context(), g.Sample),
	})
}

// preview is what reprocessing a failed job would send to SAP.
type preview struct {
	Reference string
	Lookup    bool // a look-up decides first whether anything is sent
	Call      *sap.Call
	Body      string
	Refused   string // the client refuses to send it
}

// preview describes the call a reprocess of the job would make, built by
// the SAP client's own code for the job's reference and next message UUID
// (the generation advances after a definite refusal).
func (c *console) preview(ctx context.Context, j tasks.Job) preview {
	pv := preview{Reference: c.referenceOf(j), Lookup: j.Phase == tasks.PhaseSending}
	p, err := j.Posting()
	if err != nil {
		pv.Refused = err.Error()
		return pv
	}
	req, err := sap.NewRequest(p)
	if err != nil {
		pv.Refused = err.Error()
		return pv
	}
	gen := j.Generation
	if j.Attempts > 0 && j.Phase == tasks.PhasePending {
		gen++
	}
	send := sap.Send{Reference: pv.Reference, MessageUUID: tasks.IdentityOf(&j, c.destinationOf(j)).MessageUUID(gen)}
	cfg, ok := c.opts.SAP(c.destinationOf(j))
	if !ok {
		pv.Refused = "no SAP system named " + c.destinationOf(j) + " is configured here"
		return pv
	}
	call, err := sap.DescribePost(ctx, cfg, req, send)
	if err != nil {
		pv.Refused = err.Error()
		return pv
	}
	pv.Call = &call
	pv.Body = readableBody(call.Body)
	return pv
}

// readableBody indents JSON and puts XML elements on lines of their own.
func readableBody(b []byte) string {
	var buf bytes.Buffer
	if json.Indent(&buf, b, "", "  ") == nil {
		return buf.String()
	}
	return strings.ReplaceAll(string(b), "><", ">\n<")
}

func (c *console) job(w http.ResponseWriter, r *http.Request) {
	j, err := c.opts.Ledger.Get(r.Context(), "", r.PathValue("id"))
	if errors.Is(err, ledger.ErrNotFound) {
		c.render(w, r, http.StatusNotFound, "error", "No posting has this ID (or it expired).")
		return
	}
	if err != nil {
		c.fail(w, r, http.StatusServiceUnavailable, err)
		return
	}
	data := map[string]any{"Posting": c.postingOf(j), "Payload": readableBody(j.Payload), "Failed": j.Status == tasks.StatusFailed}
	if j.Status == tasks.StatusFailed {
		data["Preview"] = c.preview(r.Context(), j)
		if j.Error != nil {
			data["GroupLink"] = groupLink(j.Error.Code, j.Error.Message)
		}
	}
	c.render(w, r, http.StatusOK, "job", data)
}

func bulkAction(s string) (ledger.BulkAction, bool) {
	switch a := ledger.BulkAction(s); a {
	case ledger.BulkReprocess, ledger.BulkDiscard:
		return a, true
	}
	return "", false
}

func (c *console) groupAction(w http.ResponseWriter, r *http.Request) {
	action, ok := bulkAction(r.PathValue("action"))
	if !ok {
		http.NotFound(w, r)
		return
	}
	code, message := r.PostFormValue("code"), r.PostFormValue("message")
	op := operation{Action: action, Code: code, Message: message, Operator: sessionOf(r).Operator,
		What: strings.TrimSpace(code + " " + message)}
	if before := r.PostFormValue("failed_before"); before != "" {
		t, err := time.Parse(time.RFC3339Nano, before)
		if err != nil {
			c.fail(w, r, http.StatusBadRequest, fmt.Errorf("failed_before: %w", err))
			return
		}
		op.FailedBefore = t
	}
	c.startOperation(w, r, op)
}

func (c *console) jobAction(w http.ResponseWriter, r *http.Request) {
	action, ok := bulkAction(r.PathValue("action"))
	if !ok {
		http.NotFound(w, r)
		return
	}
	id := r.PathValue("id")
	c.startOperation(w, r, operation{Action: action, JobID: id, What: "posting " + id, Operator: sessionOf(r).Operator})
}

func (c *console) startOperation(w http.ResponseWriter, r *http.Request, op operation) {
	op, err := c.bulk.start(r.Context(), op)
	if err != nil {
		c.fail(w, r, http.StatusServiceUnavailable, err)
		return
	}
	http.Redirect(w, r, "/console/ops/"+op.ID, http.StatusSeeOther)
}

func (c *console) operation(w http.ResponseWriter, r *http.Request) (operation, bool) {
	op, err := c.bulk.get(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, errNoOperation):
		c.render(w, r, http.StatusNotFound, "error", err.Error())
		return op, false
	case err != nil:
		c.fail(w, r, http.StatusServiceUnavailable, err)
		return op, false
	}
	return op, true
}

func (c *console) operationPage(w http.ResponseWriter, r *http.Request) {
	if op, ok := c.operation(w, r); ok {
		c.render(w, r, http.StatusOK, "operation", map[string]any{"Op": op, "GroupLink": groupLink(op.Code, op.Message),
			"Resume": op.FailedBefore.Format(time.RFC3339Nano)})
	}
}

func (c *console) operationStatus(w http.ResponseWriter, r *http.Request) {
	op, err := c.bulk.get(r.Context(), r.PathValue("id"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(op)
}

// maxApprovalsShown bounds the approval queue's page.
const maxApprovalsShown = 100

type approvalView struct {
	postingRow
	Approval *tasks.Approval
	Payload  string
	Own      bool // the operator submitted it: four eyes means someone else decides
}

func (c *console) approvals(w http.ResponseWriter, r *http.Request) {
	jobs, total, err := c.opts.Ledger.Approvals(r.Context(), maxApprovalsShown)
	if err != nil {
		c.fail(w, r, http.StatusServiceUnavailable, err)
		return
	}
	sess := sessionOf(r)
	views := make([]approvalView, len(jobs))
	for i, j := range jobs {
		views[i] = approvalView{postingRow: c.postingOf(j), Approval: j.Approval, Payload: readableBody(j.Payload), Own: j.Caller == sess.Operator}
	}
	c.render(w, r, http.StatusOK, "approvals", map[string]any{"Jobs": views, "Total": total, "Decided": r.URL.Query().Get("decided")})
}

func (c *console) decide(w http.ResponseWriter, r *http.Request) {
	sess := sessionOf(r)
	id, decision := r.PathValue("id"), r.PathValue("decision")
	if !sess.Named {
		c.refuse(w, r, sess, errors.New("approvals need a named operator from the callers file; the shared UI token identifies nobody"))
		return
	}
	var err error
	switch decision {
	case "approve":
		_, err = c.opts.Ledger.Approve(r.Context(), id, sess.Operator, r.PostFormValue("payload_hash"), r.PostFormValue("comment"))
	case "reject":
		reason := strings.TrimSpace(r.PostFormValue("reason"))
		if reason == "" {
			c.render(w, r, http.StatusBadRequest, "error", "A rejection needs a reason: the submitter reads it.")
			return
		}
		_, err = c.opts.Ledger.Reject(r.Context(), id, sess.Operator, reason)
	default:
		http.NotFound(w, r)
		return
	}
	outcome := "ok"
	if err != nil {
		outcome = err.Error()
	}
	c.opts.Audit.Info("console: approval decision", "operator", sess.Operator, "action", decision, "job_id", id, "outcome", outcome)
	if err != nil {
		status := http.StatusConflict
		if errors.Is(err, ledger.ErrNotFound) {
			status = http.StatusNotFound
		}
		c.render(w, r, status, "error", "Not "+decision+"d: "+err.Error())
		return
	}
	http.Redirect(w, r, "/console/approvals?"+url.Values{"decided": {decision + "d " + id}}.Encode(), http.StatusSeeOther)
}

// age says how long ago something was, roughly: "3 h", "12 min".
func age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h", int(d.Hours()))
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}
