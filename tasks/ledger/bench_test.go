package ledger_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/sapq/sapq/tasks/ledger"
	"github.com/sapq/sapq/tasks/taskstest"
)

// BenchmarkSubmit measures an idempotent submission (record + enqueue)
// against the baseline of a bare asynq enqueue of the same payload size, in
// the same run and on the same Redis:
//
//	go test -run '^$' -bench . -benchmem ./tasks/ledger/
var benchRuns atomic.Int64

func BenchmarkSubmit(b *testing.B) {
	rdb, _ := redisSrv.NewDB(b)
	l, err := ledger.New(ledger.Options{Redis: rdb})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()

	b.Run("baseline=asynq-enqueue", func(b *testing.B) {
		client := asynq.NewClientFromRedisClient(rdb)
		payload := []byte(fmt.Sprintf("%+v", taskstest.SupplierInvoice("payload")))
		for i := 0; b.Loop(); i++ {
			if _, err := client.EnqueueContext(ctx, asynq.NewTask("bench", payload), asynq.Queue("bench")); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ledger-submit-new", func(b *testing.B) {
		// Keys unique across -count runs too, or later runs would replay.
		run := benchRuns.Add(1)
		for i := 0; b.Loop(); i++ {
			if _, _, err := l.Submit(ctx, "bench", taskstest.SupplierInvoice(fmt.Sprintf("n%d-%d", run, i))); err != nil {
				b.Fatal(err)
			}
		}
	})
	// 16 submitters at once, as an MCP front under load: the unenqueued
	// marks of concurrent submissions are cleared by shared round trips,
	// counted per submission (roundtrips/op) with the baseline's.
	trips := &roundTrips{}
	rdb.AddHook(trips)
	parallel := func(b *testing.B, submit func(i int64) error) {
		b.SetParallelism(8) // 16 goroutines on 2 cores
		var next atomic.Int64
		trips.n.Store(0)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := submit(next.Add(1)); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(trips.n.Load())/float64(b.N), "roundtrips/op")
	}
	b.Run("baseline=asynq-enqueue-parallel", func(b *testing.B) {
		client := asynq.NewClientFromRedisClient(rdb)
		payload := []byte(fmt.Sprintf("%+v", taskstest.SupplierInvoice("payload")))
		parallel(b, func(int64) error {
			_, err := client.EnqueueContext(ctx, asynq.NewTask("bench", payload), asynq.Queue("bench"))
			return err
		})
	})
	b.Run("ledger-submit-new-parallel", func(b *testing.B) {
		run := benchRuns.Add(1)
		parallel(b, func(i int64) error {
			_, _, err := l.Submit(ctx, "bench", taskstest.SupplierInvoice(fmt.Sprintf("p%d-%d", run, i)))
			return err
		})
	})
	b.Run("ledger-submit-replay", func(b *testing.B) {
		p := taskstest.SupplierInvoice("replayed")
		if _, _, err := l.Submit(ctx, "bench", p); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, replayed, err := l.Submit(ctx, "bench", p); err != nil || !replayed {
				b.Fatal(err, replayed)
			}
		}
	})
}

// BenchmarkTaskPayload measures building and parsing an asynq task's
// payload (the job's ID, caller, run and posting) against the baseline of a
// plain asynq payload of the same posting, marshalled and unmarshalled as a
// struct with the posting as json.RawMessage, in the same run:
//
//	go test ./tasks/ledger -run '^$' -bench TaskPayload -benchmem
func BenchmarkTaskPayload(b *testing.B) {
	posting, err := json.Marshal(taskstest.JournalEntry("payload"))
	if err != nil {
		b.Fatal(err)
	}
	p := ledger.TaskPayload{JobID: "01a23644-552a-741e-a51c-a2097ed04ac7", Caller: "alice", Run: 2, Posting: posting}
	type plain struct {
		Posting json.RawMessage `json:"posting"`
	}
	b.Run("baseline=plain-marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(plain{Posting: posting}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("build", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ledger.BuildTaskPayload(p); err != nil {
				b.Fatal(err)
			}
		}
	})
	raw, _ := ledger.BuildTaskPayload(p)
	b.Run("baseline=plain-unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var v plain
			if err := json.Unmarshal(raw, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ledger.ParseTaskPayload(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// roundTrips counts the round trips a Redis client makes: each command,
// and each pipeline as one.
type roundTrips struct{ n atomic.Int64 }

func (*roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmd)
	}
}

func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmds)
	}
}
