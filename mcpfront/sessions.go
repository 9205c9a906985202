package mcpfront

import (
	"container/list"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/mark3labs/mcp-go/server"
)

// sessionStore tracks the open 2025-11-25 sessions of each caller, as
// mcp-go's session ID manager. It bounds what a caller can make the server
// hold: at most max sessions per caller (a new one ends the least recently
// used), none idle longer than idle. A session belongs to the caller that
// opened it; presented by anyone else it does not exist.
//
// Sessions live in this process's memory: with several instances behind a
// load balancer, 2025-11-25 clients need sticky sessions (2026-07-28 clients
// have no sessions).
type sessionStore struct {
	mu       sync.Mutex
	max      int
	idle     time.Duration
	byID     map[string]*session
	byCaller map[string]*list.List // of *session, most recently used first
	end      func(id string)       // frees mcp-go's state of an ended session
	gauge    func(n int)
	now      func() time.Time
}

type session struct {
	id, caller string
	lastUsed   time.Time
	elem       *list.Element
}

func newSessionStore(max int, idle time.Duration, end func(string)) *sessionStore {
	return &sessionStore{
		max: max, idle: idle, end: end, now: time.Now, gauge: func(int) {},
		byID: map[string]*session{}, byCaller: map[string]*list.List{},
	}
}

// ResolveSessionIdManager binds the manager to the request's caller. The
// sweeper and sapq's own cleanup pass no request, or one without a caller:
// they may end any session.
func (st *sessionStore) ResolveSessionIdManager(r *http.Request) server.SessionIdManager {
	m := callerSessions{st: st}
	if r != nil {
		if c, ok := CallerFromContext(r.Context()); ok {
			m.caller = c.Name
		}
	}
	return m
}

// open records a new session for caller and returns its ID, ending the
// caller's least recently used session if it has max already.
func (st *sessionStore) open(caller string) string {
	id := "mcp-session-" + uuid.NewString()
	var evicted []string
	st.mu.Lock()
	l := st.byCaller[caller]
	if l == nil {
		l = list.New()
		st.byCaller[caller] = l
	}
	for l.Len() >= st.max {
		old := l.Back().Value.(*session)
		st.removeLocked(old)
		evicted = append(evicted, old.id)
	}
	s := &session{id: id, caller: caller, lastUsed: st.now()}
	s.elem = l.PushFront(s)
	st.byID[id] = s
	n := len(st.byID)
	st.mu.Unlock()
	st.gauge(n)
	for _, old := range evicted {
		st.end(old)
	}
	return id
}

// valid reports whether id is one of caller's open sessions, and marks it
// used. An idle one is ended.
func (st *sessionStore) valid(caller, id string) bool {
	st.mu.Lock()
	s, ok := st.byID[id]
	switch {
	case !ok || s.caller != caller:
		st.mu.Unlock()
		return false
	case st.now().Sub(s.lastUsed) > st.idle:
		st.removeLocked(s)
		n := len(st.byID)
		st.mu.Unlock()
		st.gauge(n)
		st.end(id)
		return false
	}
	s.lastUsed = st.now()
	st.byCaller[caller].MoveToFront(s.elem)
	st.mu.Unlock()
	return true
}

// close ends a session; any caller's when caller is "".
func (st *sessionStore) close(caller, id string) bool {
	st.mu.Lock()
	s, ok := st.byID[id]
	if !ok || (caller != "" && s.caller != caller) {
		st.mu.Unlock()
		return false
	}
	st.removeLocked(s)
	n := len(st.byID)
	st.mu.Unlock()
	st.gauge(n)
	return true
}

func (st *sessionStore) removeLocked(s *session) {
	delete(st.byID, s.id)
	if l := st.byCaller[s.caller]; l != nil {
		l.Remove(s.elem)
		if l.Len() == 0 {
			delete(st.byCaller, s.caller)
		}
	}
}

// len is the number of open sessions.
func (st *sessionStore) len() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.byID)
}

var errNoSession = errors.New("session not found")

// callerSessions is the session ID manager mcp-go uses for one request.
type callerSessions struct {
	st     *sessionStore
	caller string
}

func (m callerSessions) Generate() string { return m.st.open(m.caller) }

func (m callerSessions) Validate(id string) (bool, error) {
	if !m.st.valid(m.caller, id) {
		return false, errNoSession
	}
	return false, nil
}

// Terminate ends the session. Another caller's session is refused
// (checkSession answers such a DELETE with 404 before it gets here); an
// unknown one is already gone, and mcp-go then frees what it still holds.
func (m callerSessions) Terminate(id string) (bool, error) {
	if m.caller != "" {
		m.st.mu.Lock()
		s, ok := m.st.byID[id]
		foreign := ok && s.caller != m.caller
		m.st.mu.Unlock()
		if foreign {
			return true, nil
		}
	}
	m.st.close(m.caller, id)
	return false, nil
}
