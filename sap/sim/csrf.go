package sim

import (
	"container/list"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// SAP Gateway binds a CSRF token to the security session named by the
// SAP_SESSIONID_<SID>_<client> cookie: the token is only accepted together with that
// cookie, and a fetch within the same session returns the same token. The store is an
// LRU bounded in size and idle time so that clients that never send cookies back
// cannot grow it without limit.
const (
	maxSessions    = 10000
	sessionIdleTTL = 30 * time.Minute // SAP's default rdisp/plugin_auto_logout
)

type session struct {
	id       string
	token    string
	lastUsed time.Time
}

type sessionStore struct {
	mu   sync.Mutex
	byID map[string]*list.Element // of *session
	lru  *list.List               // front = most recently used
}

func newSessionStore() *sessionStore {
	return &sessionStore{byID: map[string]*list.Element{}, lru: list.New()}
}

// fetch returns the session named by id, or a new one when id is unknown or expired.
func (st *sessionStore) fetch(id string, now time.Time) (sess session, created bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if e, ok := st.live(id, now); ok {
		return *e.Value.(*session), false
	}
	s := &session{id: randomToken(30), token: randomToken(18), lastUsed: now}
	st.byID[s.id] = st.lru.PushFront(s)
	for st.lru.Len() > maxSessions {
		oldest := st.lru.Back()
		st.lru.Remove(oldest)
		delete(st.byID, oldest.Value.(*session).id)
	}
	return *s, true
}

// valid reports whether token is the CSRF token of the live session id.
func (st *sessionStore) valid(id, token string, now time.Time) bool {
	if id == "" || token == "" {
		return false
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	e, ok := st.live(id, now)
	if !ok {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(e.Value.(*session).token), []byte(token)) == 1
}

// live finds a session that has not been idle too long and marks it used. Callers
// hold st.mu.
func (st *sessionStore) live(id string, now time.Time) (*list.Element, bool) {
	e, ok := st.byID[id]
	if !ok {
		return nil, false
	}
	s := e.Value.(*session)
	if now.Sub(s.lastUsed) > sessionIdleTTL {
		st.lru.Remove(e)
		delete(st.byID, id)
		return nil, false
	}
	s.lastUsed = now
	st.lru.MoveToFront(e)
	return e, true
}

// expireAll ends every session, which invalidates every CSRF token issued so far.
func (st *sessionStore) expireAll() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	n := st.lru.Len()
	st.byID = map[string]*list.Element{}
	st.lru.Init()
	return n
}

func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never returns an error (crypto/rand, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *Server) sessionCookieName() string {
	return fmt.Sprintf("SAP_SESSIONID_%s_%s", s.opts.SystemID, s.opts.Client)
}

func (s *Server) sessionID(r *http.Request) string {
	c, err := r.Cookie(s.sessionCookieName())
	if err != nil {
		return ""
	}
	return c.Value
}

// isFetch reports whether the request asks for a CSRF token.
func isFetch(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("X-CSRF-Token"), "fetch")
}

// issueCSRFToken answers a token fetch: it returns the token of the caller's session,
// opening a new session (and setting its cookies) when there is none.
func (s *Server) issueCSRFToken(w http.ResponseWriter, r *http.Request) {
	sess, created := s.sessions.fetch(s.sessionID(r), s.opts.Now())
	if created {
		http.SetCookie(w, &http.Cookie{Name: s.sessionCookieName(), Value: sess.id, Path: "/", HttpOnly: true})
		http.SetCookie(w, &http.Cookie{Name: "sap-usercontext", Value: "sap-client=" + s.opts.Client, Path: "/"})
	}
	w.Header().Set("X-CSRF-Token", sess.token)
}

// checkCSRF enforces the token on a modifying OData request. It answers 403 with
// "X-CSRF-Token: Required" (the signal for the client to fetch again) and reports
// false when the token is missing, stale or belongs to another session.
func (s *Server) checkCSRF(w http.ResponseWriter, r *http.Request) bool {
	if s.sessions.valid(s.sessionID(r), r.Header.Get("X-CSRF-Token"), s.opts.Now()) {
		return true
	}
	s.mu.Lock()
	s.stats.CSRFRejected++
	s.mu.Unlock()
	s.log.Info("sim: CSRF token validation failed", "method", r.Method, "path", r.URL.Path)
	w.Header().Set("X-CSRF-Token", "Required")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusForbidden)
	fmt.Fprint(w, "CSRF token validation failed")
	return false
}

// isModifying reports whether an OData request changes data and so needs a token.
func isModifying(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, "MERGE":
		return true
	}
	return false
}
