package sim

import (
	"net/http"
	"sync"
	"testing"
	"time"
)

// releaseHeldAtEnd lets held requests go when the test ends: a failed test
// would otherwise leave them keeping the server from closing.
func releaseHeldAtEnd(h *harness) {
	h.t.Cleanup(func() {
		for h.sim.Release() {
		}
	})
}

// awaitHeld waits until n posting requests are held inside SAP.
func (h *harness) awaitHeld(n int) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for h.sim.Held() < n {
		if time.Now().After(deadline) {
			h.t.Fatalf("%d requests held, want %d", h.sim.Held(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// A posting that arrives while another one of the same supplier is being
// processed meets SAP's lock on the supplier's account: counted always, and
// refused with SAP's lock message when the simulator enqueues as SAP does.
// Another supplier's posting meets no lock.
func TestPostingsOfOneSupplierMeetItsLock(t *testing.T) {
	for _, refuse := range []bool{false, true} {
		name := map[bool]string{false: "counted", true: "refused"}[refuse]
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, Options{EnqueueLocks: refuse, Faults: Faults{Next: []FaultKind{FaultHold}}})
			releaseHeldAtEnd(h)
			h.fetchToken()
			var wg sync.WaitGroup
			wg.Add(1)
			var first int
			go func() {
				defer wg.Done()
				resp, _ := h.postInvoice(defaultInvoice("INV-HELD").json())
				first = resp.StatusCode
			}()
			h.awaitHeld(1) // the first posting is inside SAP, holding its supplier
			other := defaultInvoice("INV-OTHER")
			other.Supplier = "17300002"
			if resp, b := h.postInvoice(other.json()); resp.StatusCode != http.StatusCreated {
				t.Fatalf("another supplier's invoice: %d %s", resp.StatusCode, b)
			}
			if st := h.sim.Stats(); st.LockCollisions != 0 {
				t.Fatalf("another supplier's invoice met a lock: %+v", st)
			}
			// The same supplier, written as SAP's ALPHA conversion allows.
			same := defaultInvoice("INV-SAME")
			same.Supplier = "0017300001"
			done := make(chan struct{})
			var second int
			var secondBody []byte
			go func() {
				defer close(done)
				resp, b := h.postInvoice(same.json())
				second, secondBody = resp.StatusCode, b
			}()
			<-done
			if refuse {
				if second != http.StatusBadRequest || odataCode(t, secondBody) != "MC/601" {
					t.Fatalf("same supplier while held: %d %s; want SAP's lock message", second, secondBody)
				}
			}
			h.sim.Release()
			wg.Wait()
			st := h.sim.Stats()
			if first != http.StatusCreated || st.LockCollisions != 1 {
				t.Fatalf("first %d, stats %+v; want the first posted and one collision", first, st)
			}
			wantPosted := map[bool]int{false: 3, true: 2}[refuse]
			if st.Posted[KindSupplierInvoice] != wantPosted {
				t.Fatalf("posted %d, want %d (second answered %d %s)", st.Posted[KindSupplierInvoice], wantPosted, second, secondBody)
			}
		})
	}
}

// MaxInFlight counts the requests SAP processes at once, a held posting
// among them until it is released.
func TestMaxInFlightCountsRequestsBeingProcessed(t *testing.T) {
	h := newHarness(t, Options{Faults: Faults{Next: []FaultKind{FaultHold, FaultHold}}})
	releaseHeldAtEnd(h)
	h.fetchToken()
	var wg sync.WaitGroup
	for _, ref := range []string{"INV-A", "INV-B"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			inv := defaultInvoice(ref)
			if ref == "INV-B" {
				inv.Supplier = "17300002"
			}
			h.postInvoice(inv.json())
		}()
	}
	h.awaitHeld(2)
	h.getJSON(siColl) // a read while both are held
	h.sim.Release()
	h.sim.Release()
	wg.Wait()
	if st := h.sim.Stats(); st.MaxInFlight != 3 || st.Posted[KindSupplierInvoice] != 2 {
		t.Fatalf("stats %+v; want 3 requests in flight at most (two held postings and a read) and both posted", st)
	}
}
