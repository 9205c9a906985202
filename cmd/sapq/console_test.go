package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/sapq/sapq/internal/testutil"
	"github.com/sapq/sapq/mcpfront"
	"github.com/sapq/sapq/sap"
	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/ledger"
	"github.com/sapq/sapq/tasks/ledger/ledgertest"
	"github.com/sapq/sapq/tasks/taskstest"
)

const (
	consoleSharedToken   = "shared-ui-token-0123456789"
	consoleOperatorToken = "olga-operator-token-0123456789"
	consoleAgentToken    = "bot-agent-token-0123456789"
)

// consoleRig is the console on a real Redis, behind an httptest server.
type consoleRig struct {
	t       *testing.T
	srv     *httptest.Server
	ledger  *ledger.Ledger
	console *console
	mu      sync.Mutex
	now     time.Time
	audit   *testutil.SyncBuffer
}

func newConsoleRig(t *testing.T, tweak func(*consoleOptions)) *consoleRig {
	t.Helper()
	rdb, db := redisSrv.NewDB(t)
	l, err := ledger.New(ledger.Options{Redis: rdb})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.TrustRedis(context.Background()); err != nil {
		t.Fatal(err)
	}
	callers, err := mcpfront.ParseCallers([]byte(fmt.Sprintf(`{"callers":[
		{"name":"olga","token_sha256":%q,"role":"operator"},
		{"name":"bot","token_sha256":%q,"role":"agent"}]}`, digest(consoleOperatorToken), digest(consoleAgentToken))), "callers.json")
	if err != nil {
		t.Fatal(err)
	}
	r := &consoleRig{t: t, ledger: l, now: time.Now(), audit: &testutil.SyncBuffer{}}
	ui := newUI(asynq.RedisClientOpt{Addr: redisSrv.Addr, DB: db}, false, l, tasks.DefaultDestination)
	t.Cleanup(func() { ui.Close() })
	opts := consoleOptions{
		Ledger: l, Redis: rdb, Auth: operatorAuth{token: consoleSharedToken, callers: callers}, Queues: ui,
		SessionTTL: time.Hour, SAP: oneSAPSystem(sap.Config{BaseURL: "http://sap.example.invalid", User: "SAPQ_COMM"}),
		Log: testLog(t), Audit: slog.New(slog.NewTextHandler(r.audit, nil)),
		Now: func() time.Time { r.mu.Lock(); defer r.mu.Unlock(); return r.now },
	}
	if tweak != nil {
		tweak(&opts)
		if opts.ReadOnly {
			ui.Close()
			ui = newUI(asynq.RedisClientOpt{Addr: redisSrv.Addr, DB: db}, true, l, tasks.DefaultDestination)
			opts.Queues = ui
		}
	}
	c, err := newConsole(opts)
	if err != nil {
		t.Fatal(err)
	}
	r.console = c
	mux := http.NewServeMux()
	c.register(mux)
	r.srv = httptest.NewServer(mux)
	t.Cleanup(func() { r.srv.Close(); c.Shutdown() })
	return r
}

func (r *consoleRig) advance(d time.Duration) {
	r.mu.Lock()
	r.now = r.now.Add(d)
	r.mu.Unlock()
}

// browser is a client that keeps cookies and does not follow redirects, so
// that each answer can be looked at.
type browser struct {
	t      *testing.T
	rig    *consoleRig
	client *http.Client
	origin string
}

func (r *consoleRig) browser() *browser {
	jar, _ := cookiejar.New(nil)
	hc := httpClient(r.t)
	hc.Jar = jar
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{t: r.t, rig: r, client: hc, origin: r.srv.URL}
}

type answer struct {
	status   int
	location string
	body     string
	cookies  []*http.Cookie
}

func (b *browser) do(method, path string, form url.Values, header http.Header) answer {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.rig.srv.URL+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if method != http.MethodGet && b.origin != "" {
		req.Header.Set("Origin", b.origin)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, location: resp.Header.Get("Location"), body: string(data), cookies: resp.Cookies()}
}

func (b *browser) get(path string) answer { return b.do(http.MethodGet, path, nil, nil) }

func (b *browser) post(path string, form url.Values) answer {
	return b.do(http.MethodPost, path, form, nil)
}

func (b *browser) login(token string) answer {
	b.t.Helper()
	return b.post("/console/login", url.Values{"token": {token}, "next": {"/console/"}})
}

// csrf is the session's CSRF token, from its cookie.
func (b *browser) csrf() string {
	u, _ := url.Parse(b.rig.srv.URL)
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == csrfCookie {
			return c.Value
		}
	}
	b.t.Fatal("no CSRF cookie")
	return ""
}

func TestConsoleLoginRefusesWrongTokens(t *testing.T) {
	r := newConsoleRig(t, nil)
	b := r.browser()
	for _, token := range []string{"", "wrong-token", consoleAgentToken, consoleSharedToken + "x"} {
		a := b.login(token)
		if a.status != http.StatusUnauthorized || len(a.cookies) != 0 || !strings.Contains(a.body, "Login refused") {
			t.Fatalf("login with %q = %d, %d cookies: want 401 and no session\n%s", token, a.status, len(a.cookies), a.body)
		}
	}
	if a := b.login(consoleAgentToken); !strings.Contains(a.body, "agent") {
		t.Fatalf("an agent's login does not say why it is refused:\n%s", a.body)
	}
	if a := b.get("/console/"); a.status != http.StatusSeeOther || !strings.HasPrefix(a.location, "/console/login") {
		t.Fatalf("after refused logins /console/ = %d %q, want the login form", a.status, a.location)
	}
	// A login from another site's form, or with no Origin at all, is
	// refused before the token is even looked at.
	for _, origin := range []string{"http://evil.example", ""} {
		b.origin = origin
		if a := b.login(consoleSharedToken); a.status != http.StatusForbidden || len(a.cookies) != 0 {
			t.Fatalf("login from origin %q = %d with %d cookies, want 403", origin, a.status, len(a.cookies))
		}
	}
	// The form never puts the token in a URL.
	if a := b.get("/console/login"); !strings.Contains(a.body, `method="post"`) || !strings.Contains(a.body, `type="password" name="token"`) {
		t.Fatalf("login form:\n%s", a.body)
	}
}

func TestConsoleSessionCookieIsNotTheToken(t *testing.T) {
	r := newConsoleRig(t, nil)
	b := r.browser()
	a := b.login(consoleOperatorToken)
	if a.status != http.StatusSeeOther || a.location != "/console/" {
		t.Fatalf("login = %d %q", a.status, a.location)
	}
	var sess *http.Cookie
	for _, c := range a.cookies {
		if strings.Contains(c.Value, consoleOperatorToken) {
			t.Fatalf("cookie %s holds the token", c.Name)
		}
		if c.Name == sessionCookie {
			sess = c
		}
		if c.SameSite != http.SameSiteStrictMode || c.Secure {
			t.Fatalf("cookie %s: SameSite %v Secure %v, want Strict and (over plain HTTP without --public-url) not Secure", c.Name, c.SameSite, c.Secure)
		}
	}
	if sess == nil || !sess.HttpOnly || len(sess.Value) < 40 {
		t.Fatalf("session cookie %+v: want an HttpOnly random ID", sess)
	}
	// Redis keeps the session under a hash of its ID, and no token.
	keys, err := r.console.opts.Redis.Keys(context.Background(), sessionPrefix+"*").Result()
	if err != nil || len(keys) != 1 || strings.Contains(keys[0], sess.Value) {
		t.Fatalf("session keys %v (%v): want one, not naming the session ID", keys, err)
	}
	stored, _ := r.console.opts.Redis.HGetAll(context.Background(), keys[0]).Result()
	for k, v := range stored {
		if strings.Contains(v, consoleOperatorToken) || strings.Contains(v, sess.Value) {
			t.Fatalf("the stored session's %s holds the token or the session ID", k)
		}
	}
	if page := b.get("/console/"); page.status != http.StatusOK || !strings.Contains(page.body, "olga") {
		t.Fatalf("/console/ after login = %d:\n%s", page.status, page.body)
	}
	// Logging out ends the session in Redis: the old cookie opens nothing.
	if a := b.post("/console/logout", url.Values{csrfField: {b.csrf()}}); a.status != http.StatusSeeOther {
		t.Fatalf("logout = %d %s", a.status, a.body)
	}
	stolen := r.browser()
	u, _ := url.Parse(r.srv.URL)
	stolen.client.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: sess.Value}})
	if a := stolen.get("/console/"); a.status != http.StatusSeeOther {
		t.Fatalf("the logged-out session's cookie still opens /console/: %d", a.status)
	}
}

// Every state-changing call needs the session's CSRF token and the
// console's own origin: the console's forms and the Asynq UI's API alike.
func TestConsoleStateChangesNeedCSRFAndOrigin(t *testing.T) {
	r := newConsoleRig(t, nil)
	b := r.browser()
	b.login(consoleSharedToken)
	csrf := b.csrf()
	group := url.Values{"code": {"F5/201"}, "message": {"Posting period 011 2026 is not open"}}
	with := func(token string) url.Values {
		v := url.Values{csrfField: {token}}
		for k, x := range group {
			v[k] = x
		}
		return v
	}
	for _, c := range []struct {
		name   string
		form   url.Values
		origin string
	}{
		{"no CSRF token", group, b.origin},
		{"a wrong CSRF token", with("not-the-token"), b.origin},
		{"another session's CSRF token", with(otherSessionCSRF(r)), b.origin},
		{"a foreign origin", with(csrf), "http://evil.example"},
		{"no origin", with(csrf), ""},
	} {
		b.origin = c.origin
		if a := b.post("/console/group/reprocess", c.form); a.status != http.StatusForbidden {
			t.Errorf("reprocess with %s = %d, want 403", c.name, a.status)
		}
		if a := b.do(http.MethodPost, "/ui/api/queues/postings:pause", nil, http.Header{csrfHeader: {c.form.Get(csrfField)}}); a.status != http.StatusForbidden {
			t.Errorf("Asynq UI pause with %s = %d, want 403", c.name, a.status)
		}
		if a := b.post("/console/logout", c.form); a.status != http.StatusForbidden {
			t.Errorf("logout with %s = %d, want 403", c.name, a.status)
		}
	}
	b.origin = r.srv.URL
	if a := b.post("/console/group/reprocess", with(csrf)); a.status != http.StatusSeeOther || !strings.HasPrefix(a.location, "/console/ops/") {
		t.Fatalf("reprocess with the CSRF token = %d %q %s", a.status, a.location, a.body)
	}
	// The Asynq UI's own calls carry the token as axios does: the
	// XSRF-TOKEN cookie copied into the X-XSRF-TOKEN header.
	if a := b.do(http.MethodPost, "/ui/api/queues/postings:pause", nil, http.Header{csrfHeader: {csrf}}); a.status >= 400 && a.status != http.StatusNotFound {
		t.Fatalf("Asynq UI pause with the CSRF header = %d %s", a.status, a.body)
	}
	if !strings.Contains(r.audit.String(), "request refused") || !strings.Contains(r.audit.String(), "bulk action begun") {
		t.Fatalf("the audit log misses the refusals or the action:\n%s", r.audit.String())
	}
}

func otherSessionCSRF(r *consoleRig) string {
	other := r.browser()
	other.login(consoleOperatorToken)
	return other.csrf()
}

func TestConsoleReadOnlyRefusesActions(t *testing.T) {
	r := newConsoleRig(t, func(o *consoleOptions) { o.ReadOnly = true })
	ctx := context.Background()
	job, _, err := r.ledger.Submit(ctx, "alice", taskstest.JournalEntry("je-readonly"))
	if err != nil {
		t.Fatal(err)
	}
	ledgertest.Refuse(t, r.ledger, job.ID, "F5/201", "Posting period is not open")
	b := r.browser()
	b.login(consoleOperatorToken)
	csrf := b.csrf()
	group := groupLink("F5/201", "Posting period is not open")
	if page := b.get(group); page.status != http.StatusOK || strings.Contains(page.body, "Reprocess all") {
		t.Fatalf("read-only group page = %d, shows actions:\n%s", page.status, page.body)
	}
	for _, path := range []string{"/console/group/reprocess", "/console/group/discard", "/console/jobs/" + job.ID + "/reprocess", "/console/approvals/" + job.ID + "/approve"} {
		a := b.post(path, url.Values{csrfField: {csrf}, "code": {"F5/201"}, "message": {"Posting period is not open"}})
		if a.status != http.StatusForbidden || !strings.Contains(a.body, "read-only") {
			t.Errorf("POST %s in read-only mode = %d %s, want 403", path, a.status, a.body)
		}
	}
	if a := b.do(http.MethodPost, "/ui/api/queues/postings:pause", nil, http.Header{csrfHeader: {csrf}}); a.status != http.StatusMethodNotAllowed {
		t.Errorf("Asynq UI pause in read-only mode = %d, want asynqmon's 405", a.status)
	}
	if j, _ := r.ledger.Get(ctx, "", job.ID); j.Status != tasks.StatusFailed {
		t.Fatalf("the job is %s after refused actions, want failed", j.Status)
	}
	// Looking and logging out still work.
	if a := b.post("/console/logout", url.Values{csrfField: {csrf}}); a.status != http.StatusSeeOther {
		t.Fatalf("logout in read-only mode = %d", a.status)
	}
}

func TestConsoleSessionExpires(t *testing.T) {
	r := newConsoleRig(t, nil)
	b := r.browser()
	b.login(consoleSharedToken)
	if a := b.get("/console/"); a.status != http.StatusOK {
		t.Fatalf("/console/ = %d", a.status)
	}
	r.advance(59 * time.Minute)
	if a := b.get("/console/approvals"); a.status != http.StatusOK {
		t.Fatalf("within the session's hour /console/approvals = %d", a.status)
	}
	r.advance(2 * time.Minute)
	if a := b.get("/console/"); a.status != http.StatusSeeOther || !strings.HasPrefix(a.location, "/console/login?next=") {
		t.Fatalf("after the session's hour /console/ = %d %q, want the login form", a.status, a.location)
	}
	if a := b.post("/console/group/reprocess", url.Values{csrfField: {b.csrf()}}); a.status != http.StatusUnauthorized {
		t.Fatalf("an action after the session's hour = %d, want 401", a.status)
	}
	if a := b.get("/ui/"); a.status != http.StatusSeeOther {
		t.Fatalf("the Asynq UI after the session's hour = %d, want the login form", a.status)
	}
}

// Behind a TLS-terminating proxy (--public-url https://...) cookies are
// Secure, and only the public origin may change anything.
func TestConsoleBehindProxy(t *testing.T) {
	public, _ := url.Parse("https://sapq.example.com")
	r := newConsoleRig(t, func(o *consoleOptions) { o.PublicURL = public })
	b := r.browser()
	if a := b.login(consoleSharedToken); a.status != http.StatusForbidden {
		t.Fatalf("login from the backend's own origin = %d, want 403 (the browser's origin is the public URL)", a.status)
	}
	b.origin = "https://sapq.example.com"
	a := b.login(consoleSharedToken)
	if a.status != http.StatusSeeOther || len(a.cookies) != 2 {
		t.Fatalf("login from the public origin = %d with %d cookies", a.status, len(a.cookies))
	}
	for _, c := range a.cookies {
		if !c.Secure {
			t.Fatalf("cookie %s is not Secure behind an https proxy", c.Name)
		}
	}
}

// A group's page shows its postings and what a reprocess sends; its
// actions run in the background and report their progress; the other
// group is left alone.
func TestConsoleReprocessesAndDiscardsGroups(t *testing.T) {
	r := newConsoleRig(t, nil)
	ctx := context.Background()
	const closed, account = "Posting period 011 2026 is not open", "G/L account 99999999 does not exist"
	var closedIDs, accountIDs []string
	for i := range 5 {
		j, _, err := r.ledger.Submit(ctx, "alice", taskstest.JournalEntry(fmt.Sprintf("je-closed-%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		ledgertest.Refuse(t, r.ledger, j.ID, "F5/201", closed)
		closedIDs = append(closedIDs, j.ID)
		j, _, err = r.ledger.Submit(ctx, "alice", taskstest.SupplierInvoice(fmt.Sprintf("INV-ACCT-%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		ledgertest.Refuse(t, r.ledger, j.ID, "F5/507", account)
		accountIDs = append(accountIDs, j.ID)
	}
	b := r.browser()
	b.login(consoleSharedToken)
	overview := b.get("/console/")
	for _, want := range []string{"10 failed postings in 2 groups", "F5/201", closed, "F5/507", account} {
		if !strings.Contains(overview.body, want) {
			t.Fatalf("overview lacks %q:\n%s", want, overview.body)
		}
	}
	page := b.get(groupLink("F5/201", closed))
	sample, _ := r.ledger.Get(ctx, "", closedIDs[0])
	for _, want := range []string{"5 failed postings", "/sap/bc/srt/scs_ext/sap/journalentrycreaterequestconfi", "POST http://sap.example.invalid", tasks.IdentityOf(&sample, tasks.DefaultDestination).Reference(), closedIDs[4]} {
		if !strings.Contains(page.body, want) {
			t.Fatalf("group page lacks %q:\n%s", want, page.body)
		}
	}
	if strings.Contains(page.body, accountIDs[0]) {
		t.Fatal("the group page lists a posting of another group")
	}
	a := b.post("/console/group/reprocess", url.Values{csrfField: {b.csrf()}, "code": {"F5/201"}, "message": {closed}})
	if a.status != http.StatusSeeOther {
		t.Fatalf("reprocess = %d %s", a.status, a.body)
	}
	op := awaitOperation(t, b, a.location)
	if op.Done != 5 || op.Selected != 5 || op.SkippedCount != 0 || op.Error != "" {
		t.Fatalf("operation = %+v, want 5 of 5 reprocessed", op)
	}
	for _, id := range closedIDs {
		if j, _ := r.ledger.Get(ctx, "", id); j.Status != tasks.StatusQueued || j.Run != 1 {
			t.Fatalf("reprocessed job %s is %s run %d, want queued run 1", id, j.Status, j.Run)
		}
	}
	for _, id := range accountIDs {
		if j, _ := r.ledger.Get(ctx, "", id); j.Status != tasks.StatusFailed {
			t.Fatalf("a job of the other group is %s", j.Status)
		}
	}
	a = b.post("/console/group/discard", url.Values{csrfField: {b.csrf()}, "code": {"F5/507"}, "message": {account}})
	if op := awaitOperation(t, b, a.location); op.Done != 5 {
		t.Fatalf("discard = %+v", op)
	}
	if j, _ := r.ledger.Get(ctx, "", accountIDs[0]); j.Status != tasks.StatusCancelled {
		t.Fatalf("a discarded job is %s", j.Status)
	}
	if page := b.get(a.location); !strings.Contains(page.body, "Finished") {
		t.Fatalf("the operation's page does not say it finished:\n%s", page.body)
	}
	if log := r.audit.String(); !strings.Contains(log, "action=reprocess") || !strings.Contains(log, "outcome=done") || !strings.Contains(log, "operator=ui-token") {
		t.Fatalf("audit log:\n%s", log)
	}
}

func awaitOperation(t *testing.T, b *browser, page string) operation {
	t.Helper()
	var op operation
	await(t, "operation "+page+" finished", func() bool {
		a := b.get(page + "/status")
		if a.status != http.StatusOK {
			t.Fatalf("%s/status = %d %s", page, a.status, a.body)
		}
		if err := json.Unmarshal([]byte(a.body), &op); err != nil {
			t.Fatal(err)
		}
		return op.Finished
	})
	return op
}

// Approvals need a named operator, who is not the submitter, and bind to
// the payload shown.
func TestConsoleApprovals(t *testing.T) {
	r := newConsoleRig(t, nil)
	ctx := context.Background()
	theirs, _, err := r.ledger.SubmitForApproval(ctx, "alice", taskstest.SupplierInvoice("INV-BIG"), ledger.ApprovalRequest{Reason: "above alice's threshold of 5000.00 EUR"})
	if err != nil {
		t.Fatal(err)
	}
	own, _, err := r.ledger.SubmitForApproval(ctx, "olga", taskstest.SupplierInvoice("INV-OWN"), ledger.ApprovalRequest{Reason: "above olga's threshold"})
	if err != nil {
		t.Fatal(err)
	}
	shared := r.browser()
	shared.login(consoleSharedToken)
	if page := shared.get("/console/approvals"); !strings.Contains(page.body, "2 postings awaiting") || strings.Contains(page.body, "Approve this payload") {
		t.Fatalf("the shared token's approvals page:\n%s", page.body)
	}
	form := url.Values{csrfField: {shared.csrf()}, "payload_hash": {theirs.Approval.PayloadHash}}
	if a := shared.post("/console/approvals/"+theirs.ID+"/approve", form); a.status != http.StatusForbidden {
		t.Fatalf("approval with the shared token = %d, want 403", a.status)
	}
	olga := r.browser()
	olga.login(consoleOperatorToken)
	page := olga.get("/console/approvals")
	if !strings.Contains(page.body, "above alice") || !strings.Contains(page.body, "INV-BIG") || !strings.Contains(page.body, "You submitted it") {
		t.Fatalf("olga's approvals page:\n%s", page.body)
	}
	if a := olga.post("/console/approvals/"+own.ID+"/approve", url.Values{csrfField: {olga.csrf()}, "payload_hash": {own.Approval.PayloadHash}}); a.status != http.StatusConflict {
		t.Fatalf("approving one's own posting = %d, want refused", a.status)
	}
	if a := olga.post("/console/approvals/"+theirs.ID+"/approve", url.Values{csrfField: {olga.csrf()}, "payload_hash": {"NOTTHEHASH"}}); a.status != http.StatusConflict {
		t.Fatalf("approving another payload = %d, want refused", a.status)
	}
	if a := olga.post("/console/approvals/"+theirs.ID+"/approve", url.Values{csrfField: {olga.csrf()}, "payload_hash": {theirs.Approval.PayloadHash}, "comment": {"checked"}}); a.status != http.StatusSeeOther {
		t.Fatalf("approve = %d %s", a.status, a.body)
	}
	j, _ := r.ledger.Get(ctx, "", theirs.ID)
	if j.Status != tasks.StatusQueued || j.Approval.DecidedBy != "olga" {
		t.Fatalf("approved job = %s by %q", j.Status, j.Approval.DecidedBy)
	}
	if !strings.Contains(r.audit.String(), "approval decision") || !strings.Contains(r.audit.String(), "operator=olga") {
		t.Fatalf("audit log:\n%s", r.audit.String())
	}
}

// After the login the browser goes back where it was, but never to
// another site.
func TestConsoleLoginGoesBackOnlyToItsOwnPages(t *testing.T) {
	for next, want := range map[string]string{
		"/console/group?code=F5%2F201": "/console/group?code=F5%2F201",
		"/ui/queues/postings":          "/ui/queues/postings",
		"":                             "/console/",
		"https://evil.example/":        "/console/",
		"//evil.example/":              "/console/",
		`/\evil.example/`:              "/console/",
		"console/":                     "/console/",
	} {
		if got := safeNext(next); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", next, got, want)
		}
	}
}

// The Asynq UI's payload column leads with where the posting stands, then
// what it is.
func TestAsynqUISummarizesPostings(t *testing.T) {
	r := newConsoleRig(t, nil)
	ctx := context.Background()
	job, _, err := r.ledger.Submit(ctx, "alice", taskstest.JournalEntry("je-summary"))
	if err != nil {
		t.Fatal(err)
	}
	ledgertest.Refuse(t, r.ledger, job.ID, "F5/201", "Posting period 011 2026 is not open")
	info, err := r.ledger.Inspector().GetTaskInfo(r.ledger.Queue(), ledger.TaskID(job.ID))
	if err != nil {
		t.Fatal(err)
	}
	got := summarizePosting(ctx, r.ledger, tasks.DefaultDestination, info.Type, info.Payload)
	lines := strings.Split(got, "\n")
	ref := tasks.IdentityOf(&job, tasks.DefaultDestination).Reference()
	want := []string{"failed: F5/201 Posting period 011 2026 is not open", "journal_entry · company 1010 · 250.00 EUR", "ref " + ref + " · caller alice", "job " + job.ID}
	if len(lines) < len(want)+1 {
		t.Fatalf("summary:\n%s", got)
	}
	for i, w := range want {
		if lines[i] != w {
			t.Errorf("line %d = %q, want %q", i+1, lines[i], w)
		}
	}
	if !strings.Contains(lines[len(want)], `"idempotency_key":"je-summary"`) {
		t.Errorf("the posting line = %q", lines[len(want)])
	}
}

// Under sapq dev's embedded Redis, the Asynq UI's Redis page gets the INFO
// fields it reads: no "undefined days", no NaN.
func TestDevEmbeddedRedisAnswersTheAsynqUIsRedisPage(t *testing.T) {
	const token = "info-token-0123456789"
	base := startDev(t, token, true)
	c := consoleLogin(t, base, token)
	resp, err := c.Get(base + "/ui/api/redis_info")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Info map[string]string `json:"info"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"redis_version", "uptime_in_days", "used_memory_human", "used_memory_peak_human", "mem_fragmentation_ratio", "connected_clients", "connected_slaves", "rdb_last_save_time", "rdb_changes_since_last_save"} {
		if body.Info[field] == "" {
			t.Errorf("INFO has no %s: %v", field, body.Info)
		}
	}
	if body.Info["rdb_last_save_time"] != "0" || body.Info["uptime_in_days"] != "0" {
		t.Errorf("INFO = %v: want no save time (the UI shows nothing for 0) and a whole number of days", body.Info)
	}
}

// consoleLogin logs in to a console at base as a browser does and returns
// a client with the session's cookies.
func consoleLogin(t *testing.T, base, token string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := httpClient(t)
	c.Jar = jar
	req, _ := http.NewRequest(http.MethodPost, base+"/console/login", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	resp, err := c.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("log in to %s: %v %v", base, err, resp)
	}
	resp.Body.Close()
	return c
}
