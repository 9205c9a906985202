package sim

import (
	"slices"
	"sync"
)

// SAP's enqueue server locks the business objects a posting changes (a
// supplier's or customer's account, a material's plant data, a sales order)
// for as long as the work process posts it; a second posting that needs one
// of them meanwhile is refused with a lock message, the lock table being
// what transaction SM12 shows. The simulator keeps such a table for the time
// a posting request is processed (SAP's processing time included), which is
// what lets a test see whether two postings of one object ever overlapped
// in SAP (Stats.LockCollisions), and, with Options.EnqueueLocks, refuses the
// second one as SAP does.
//
// Objects are named "<type>/<company code>/<number>": "supplier/1010/17300001",
// "customer/1010/10100001".
type enqueueTable struct {
	mu   sync.Mutex
	held map[string]int // object -> postings in process that hold it
}

// lock takes the objects for one posting. With refuse set, a posting that
// meets a held object takes nothing and reports the collision: SAP refuses
// it. Without, it takes them anyway and reports the collision, so that an
// overlap is counted but changes nothing. unlock must be called with the
// same objects when lock took them (taken).
func (e *enqueueTable) lock(objects []string, refuse bool) (collided, taken bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, o := range objects {
		if e.held[o] > 0 {
			collided = true
		}
	}
	if collided && refuse {
		return true, false
	}
	if e.held == nil {
		e.held = map[string]int{}
	}
	for _, o := range objects {
		e.held[o]++
	}
	return collided, true
}

func (e *enqueueTable) unlock(objects []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, o := range objects {
		if e.held[o]--; e.held[o] <= 0 {
			delete(e.held, o)
		}
	}
}

// enqueue takes a posting's objects in the lock table for the rest of its
// processing. It reports false when SAP refuses the posting because another
// one holds an object (only with Options.EnqueueLocks); otherwise the caller
// calls the returned release when the posting is processed.
func (s *Server) enqueue(kind Kind, objects []string) (release func(), ok bool) {
	objects = slices.Compact(slices.Sorted(slices.Values(objects)))
	collided, taken := s.locks.lock(objects, s.opts.EnqueueLocks)
	if collided {
		s.mu.Lock()
		s.stats.LockCollisions++
		s.mu.Unlock()
		s.log.Warn("sim: posting meets an object another posting is processing", "kind", kind, "objects", objects, "refused", !taken)
	}
	if !taken {
		return nil, false
	}
	return func() { s.locks.unlock(objects) }, true
}

// partnerObjects are the accounts of the customers and suppliers a posting
// books on, as enqueue objects; numbers compare as SAP's ALPHA conversion
// does ("0017300001" is supplier 17300001).
func partnerObjects(companyCode string, customers, suppliers []string) []string {
	var out []string
	for _, c := range customers {
		if c != "" {
			out = append(out, "customer/"+companyCode+"/"+alpha(c))
		}
	}
	for _, v := range suppliers {
		if v != "" {
			out = append(out, "supplier/"+companyCode+"/"+alpha(v))
		}
	}
	return out
}

// enterRequest counts a request SAP begins processing, for
// Stats.MaxInFlight: a cap on the calls to one SAP system must hold in what
// SAP sees. leaveRequest counts it out.
func (s *Server) enterRequest() {
	s.mu.Lock()
	s.inFlight++
	s.stats.MaxInFlight = max(s.stats.MaxInFlight, s.inFlight)
	s.mu.Unlock()
}

func (s *Server) leaveRequest() {
	s.mu.Lock()
	s.inFlight--
	s.mu.Unlock()
}
