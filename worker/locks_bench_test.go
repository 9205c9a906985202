package worker_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sapq/sapq/internal/redistest"
	"github.com/sapq/sapq/sap"
	"github.com/sapq/sapq/sap/sim"
	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/ledger"
	"github.com/sapq/sapq/tasks/taskstest"
	"github.com/sapq/sapq/worker"
)

// What the leases cost per job: an attempt's enter (the objects' and the
// destination's leases), confirm (the renewal right before the post) and
// release, against the baseline of a job with no SAP object and no cap,
// which touches no Redis at all. Figures, not assertions:
//
//	go test ./worker -run '^$' -bench Gate -benchtime 2000x
func BenchmarkGate(b *testing.B) {
	single, _ := redisSrv.NewDB(b)
	cluster := redistest.SharedCluster(b, redistest.ClusterOptions{}).Client()
	for _, r := range []struct {
		name string
		rdb  redis.UniversalClient
	}{{"redis", single}, {"cluster", cluster}} {
		for _, c := range []struct {
			name        string
			objects     []string
			maxInFlight int
		}{
			{"baseline", nil, 0},
			{"one_object", []string{"supplier/1010/17300001"}, 0},
			{"three_objects", []string{"supplier/1010/17300001", "customer/1010/10100001", "customer/1010/10100002"}, 0},
			{"cap", nil, 10},
			{"one_object_and_cap", []string{"supplier/1010/17300001"}, 10},
		} {
			b.Run(r.name+"/"+c.name, func(b *testing.B) {
				g := worker.NewGate(r.rdb, time.Minute, c.maxInFlight)
				ctx := context.Background()
				b.ResetTimer()
				for i := range b.N {
					p, err := g.Enter(ctx, fmt.Sprint("job-", i), c.objects, "bench")
					if err != nil {
						b.Fatal(err)
					}
					if err := p.Confirm(ctx); err != nil {
						b.Fatal(err)
					}
					p.Release()
				}
			})
		}
	}
}

// Postings per second through one worker (concurrency 10, SAP answering at
// once): journal entries that lock nothing, against journal entries that
// each lock a supplier of their own, with and without a cap well above the
// concurrency, so that only the leases' cost shows. Figures, not
// assertions:
//
//	go test ./worker -run '^$' -bench WorkerThroughput -benchtime 300x
func BenchmarkWorkerThroughput(b *testing.B) {
	for _, c := range []struct {
		name        string
		locks       bool
		maxInFlight int
	}{{"baseline", false, 0}, {"object", true, 0}, {"object_and_cap", true, 100}} {
		b.Run(c.name, func(b *testing.B) {
			rdb, _ := redisSrv.NewDB(b)
			md := sim.DefaultMasterData()
			postings := make([]tasks.Posting, b.N)
			for i := range postings {
				key := fmt.Sprintf("je-bench-%s-%d", c.name, i)
				if !c.locks {
					postings[i] = taskstest.JournalEntry(key)
					continue
				}
				supplier := fmt.Sprint(18000000 + i)
				md.Suppliers["1010"][supplier] = true
				postings[i] = paymentTo(key, supplier)
			}
			s := sim.New(sim.Options{User: simUser, Password: simPassword, MasterData: md, Logger: discardLogger})
			hs := httptest.NewServer(s)
			defer hs.Close()
			client, err := sap.New(sap.Config{BaseURL: hs.URL, User: simUser, Password: simPassword, Timeout: rigSAPTimeout, Logger: discardLogger})
			if err != nil {
				b.Fatal(err)
			}
			l, err := ledger.New(ledger.Options{Redis: rdb, Settle: rigSettle, Logger: discardLogger})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			if err := l.TrustRedis(ctx); err != nil {
				b.Fatal(err)
			}
			for _, p := range postings {
				if _, _, err := l.Submit(ctx, "bench", p); err != nil {
					b.Fatal(err)
				}
			}
			dest, err := sap.SingleDestination(tasks.DefaultDestination, client)
			if err != nil {
				b.Fatal(err)
			}
			w, err := worker.New(worker.Options{Redis: rdb, Ledger: l, SAP: dest, Concurrency: 10, SAPTimeout: rigSAPTimeout,
				MaxInFlight: c.maxInFlight, PollInterval: 10 * time.Millisecond, SweepInterval: -1, Logger: discardLogger})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			if err := w.Start(); err != nil {
				b.Fatal(err)
			}
			deadline := time.Now().Add(settle)
			for s.Stats().Posted[sim.KindJournalEntry] < b.N {
				if time.Now().After(deadline) {
					b.Fatalf("%d of %d posted within %s", s.Stats().Posted[sim.KindJournalEntry], b.N, settle)
				}
				time.Sleep(time.Millisecond)
			}
			b.StopTimer()
			w.Shutdown()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "postings/s")
			if st := s.Stats(); st.Attempts[sim.KindJournalEntry] != b.N {
				b.Fatalf("%d posting requests for %d postings", st.Attempts[sim.KindJournalEntry], b.N)
			}
		})
	}
}

var discardLogger = slog.New(slog.DiscardHandler)
