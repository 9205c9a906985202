package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sapq/sapq/mcpfront"
)

// Operators log in to the console with a token, in a form (never in a URL):
// the shared UI token (SAPQ_UI_TOKEN), or their own from the callers file,
// whose entry must have the operator role. A login opens a session: a random
// ID in an HttpOnly, SameSite=Strict cookie, the session itself in Redis
// (so that several console instances share it) with an expiry. The cookie
// never holds the token.
//
// Every state-changing request (POST and the Asynq UI's DELETE) must come
// from the console's own origin (the Origin header) and carry the session's
// CSRF token: in a form field, or in the X-XSRF-TOKEN header, which the
// Asynq UI's HTTP library (axios) copies from the XSRF-TOKEN cookie.
//
// Four-eyes approval needs to know who approves: only operators from the
// callers file may approve or reject. The shared token identifies nobody;
// its sessions may look at everything and reprocess or discard failures.

const (
	sessionCookie = "sapq_session"
	// csrfCookie and csrfHeader are the names axios, the Asynq UI's HTTP
	// library, reads and sends.
	csrfCookie = "XSRF-TOKEN"
	csrfHeader = "X-XSRF-TOKEN"
	csrfField  = "csrf"
	// sharedOperator names sessions opened with the shared UI token in the
	// audit log.
	sharedOperator = "ui-token"
)

// operatorAuth decides who may log in.
type operatorAuth struct {
	// token is the shared UI token; "" when none is configured.
	token string
	// callers is the callers file's directory; nil when none is given.
	callers *mcpfront.Callers
}

// errNotOperator is a login with a token the callers file gives to an
// agent.
var errNotOperator = errors.New("this token belongs to an agent; the console is for callers with the operator role")

// login returns the operator a token belongs to, and whether they are a
// named person (who may approve).
func (a operatorAuth) login(token string) (name string, named bool, err error) {
	if token == "" {
		return "", false, errors.New("no token given")
	}
	if c, ok := a.callers.ByToken(token); ok {
		if c.Role != mcpfront.RoleOperator {
			return "", false, errNotOperator
		}
		return c.Name, true, nil
	}
	if a.token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(a.token)) == 1 {
		return sharedOperator, false, nil
	}
	return "", false, errors.New("unknown token")
}

// session is one operator's login.
type session struct {
	id       string // the cookie's value; Redis keeps only its hash
	Operator string
	// Named is true for an operator from the callers file: approvals need
	// a name.
	Named   bool
	CSRF    string
	Expires time.Time
}

// sessionStore keeps sessions in Redis, under the SHA-256 of their IDs: a
// copy of the keyspace names no usable session.
type sessionStore struct {
	rdb redis.UniversalClient
	ttl time.Duration
	now func() time.Time
}

const sessionPrefix = "sapq:ui:session:"

func sessionKey(id string) string {
	sum := sha256.Sum256([]byte(id))
	return sessionPrefix + hex.EncodeToString(sum[:])
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *sessionStore) create(ctx context.Context, operator string, named bool) (session, error) {
	sess := session{id: randomToken(), Operator: operator, Named: named, CSRF: randomToken(), Expires: s.now().Add(s.ttl)}
	key := sessionKey(sess.id)
	pipe := s.rdb.TxPipeline()
	pipe.HSet(ctx, key, "operator", operator, "named", strconv.FormatBool(named), "csrf", sess.CSRF, "expires_ms", sess.Expires.UnixMilli())
	pipe.PExpireAt(ctx, key, sess.Expires)
	if _, err := pipe.Exec(ctx); err != nil {
		return session{}, fmt.Errorf("store session: %w", err)
	}
	return sess, nil
}

// errNoSession is a request without a live session.
var errNoSession = errors.New("not logged in, or the session has expired")

func (s *sessionStore) get(ctx context.Context, id string) (session, error) {
	if id == "" {
		return session{}, errNoSession
	}
	f, err := s.rdb.HGetAll(ctx, sessionKey(id)).Result()
	if err != nil {
		return session{}, fmt.Errorf("read session: %w", err)
	}
	exp, _ := strconv.ParseInt(f["expires_ms"], 10, 64)
	sess := session{id: id, Operator: f["operator"], Named: f["named"] == "true", CSRF: f["csrf"], Expires: time.UnixMilli(exp)}
	if sess.Operator == "" || sess.CSRF == "" || !s.now().Before(sess.Expires) {
		return session{}, errNoSession
	}
	return sess, nil
}

func (s *sessionStore) delete(ctx context.Context, id string) error {
	return s.rdb.Del(ctx, sessionKey(id)).Err()
}

// cookies sets (or, with a zero session, clears) the session and CSRF
// cookies.
func (c *console) setCookies(w http.ResponseWriter, r *http.Request, sess session) {
	secure := c.secure(r)
	maxAge := int(time.Until(sess.Expires).Seconds())
	if sess.id == "" {
		maxAge = -1
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: sess.id, Path: "/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secure})
	// Readable by scripts on purpose: the Asynq UI sends it back as a
	// header. It authenticates nothing without the session cookie.
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: sess.CSRF, Path: "/", MaxAge: maxAge,
		SameSite: http.SameSiteStrictMode, Secure: secure})
}

// secure reports whether cookies must be Secure: the browser reaches the
// console over TLS, directly or through a proxy (--public-url https://...).
func (c *console) secure(r *http.Request) bool {
	return r.TLS != nil || (c.opts.PublicURL != nil && c.opts.PublicURL.Scheme == "https")
}

// origin is the console's origin as browsers see it.
func (c *console) origin(r *http.Request) string {
	if u := c.opts.PublicURL; u != nil {
		return u.Scheme + "://" + u.Host
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// sameOrigin checks a state-changing request's Origin header. Browsers
// send it with every POST and DELETE; a request without one is refused.
func (c *console) sameOrigin(r *http.Request) error {
	o := r.Header.Get("Origin")
	if o == "" {
		return errors.New("the request has no Origin header")
	}
	u, err := url.Parse(o)
	if err != nil || u.Scheme+"://"+u.Host != c.origin(r) {
		return fmt.Errorf("origin %q is not the console's (%s)", o, c.origin(r))
	}
	return nil
}

func stateChanging(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// checkCSRF compares the request's CSRF token, from the form or the
// header, with the session's.
func checkCSRF(r *http.Request, sess session) error {
	given := r.Header.Get(csrfHeader)
	if given == "" {
		given = r.PostFormValue(csrfField)
	}
	if given == "" || subtle.ConstantTimeCompare([]byte(given), []byte(sess.CSRF)) != 1 {
		return errors.New("missing or wrong CSRF token; reload the page")
	}
	return nil
}

type sessionKeyType struct{}

func sessionOf(r *http.Request) session {
	s, _ := r.Context().Value(sessionKeyType{}).(session)
	return s
}

// authenticated lets a request through with a live session, and a
// state-changing one only from the console's origin with the session's
// CSRF token. Without a session a page redirects to the login form.
func (c *console) authenticated(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var id string
		if ck, err := r.Cookie(sessionCookie); err == nil {
			id = ck.Value
		}
		sess, err := c.sessions.get(r.Context(), id)
		if err != nil {
			if !errors.Is(err, errNoSession) {
				c.opts.Log.Error("console: session", "err", err)
				http.Error(w, "sessions cannot be read now", http.StatusServiceUnavailable)
				return
			}
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/console/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			http.Error(w, "not logged in, or the session has expired", http.StatusUnauthorized)
			return
		}
		if stateChanging(r) {
			if err := c.sameOrigin(r); err != nil {
				c.refuse(w, r, sess, err)
				return
			}
			if err := checkCSRF(r, sess); err != nil {
				c.refuse(w, r, sess, err)
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sessionKeyType{}, sess)))
	})
}

func (c *console) refuse(w http.ResponseWriter, r *http.Request, sess session, err error) {
	c.opts.Audit.Warn("console: request refused", "operator", sess.Operator, "method", r.Method, "path", r.URL.Path, "reason", err.Error())
	http.Error(w, "forbidden: "+err.Error(), http.StatusForbidden)
}

// safeNext is where to go after logging in: a path of this server only.
func safeNext(next string) string {
	u, err := url.Parse(next)
	// Browsers read a backslash as a slash: "/\host" would be "//host".
	if next == "" || err != nil || u.IsAbs() || u.Host != "" || strings.Contains(next, "\\") || len(u.Path) == 0 || u.Path[0] != '/' || (len(u.Path) > 1 && u.Path[1] == '/') {
		return "/console/"
	}
	return u.RequestURI()
}

func (c *console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "login", map[string]any{"Next": safeNext(r.URL.Query().Get("next"))})
}

func (c *console) login(w http.ResponseWriter, r *http.Request) {
	// The login form is cross-site-request-protected by its origin: a
	// foreign page must not log a browser in as someone else.
	if err := c.sameOrigin(r); err != nil {
		c.refuse(w, r, session{}, err)
		return
	}
	next := safeNext(r.PostFormValue("next"))
	name, named, err := c.opts.Auth.login(r.PostFormValue("token"))
	if err != nil {
		c.opts.Audit.Warn("console: login refused", "reason", err.Error(), "remote", r.RemoteAddr)
		c.render(w, r, http.StatusUnauthorized, "login", map[string]any{"Next": next, "Error": "Login refused: " + err.Error() + "."})
		return
	}
	sess, err := c.sessions.create(r.Context(), name, named)
	if err != nil {
		c.opts.Log.Error("console: login", "err", err)
		http.Error(w, "sessions cannot be stored now", http.StatusServiceUnavailable)
		return
	}
	c.opts.Audit.Info("console: login", "operator", name, "named", named, "remote", r.RemoteAddr)
	c.setCookies(w, r, sess)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (c *console) logout(w http.ResponseWriter, r *http.Request) {
	sess := sessionOf(r)
	if err := c.sessions.delete(r.Context(), sess.id); err != nil {
		c.opts.Log.Error("console: logout", "err", err)
	}
	c.opts.Audit.Info("console: logout", "operator", sess.Operator)
	c.setCookies(w, r, session{})
	http.Redirect(w, r, "/console/login", http.StatusSeeOther)
}
