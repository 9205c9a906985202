package chaos

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"time"
)

// killWorkers SIGKILLs a worker every KillEvery until the chaos ends.
func (r *run) killWorkers(ctx context.Context) {
	rng := mrand.New(mrand.NewPCG(r.opts.Seed, 0x6b111))
	t := time.NewTicker(r.opts.KillEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			r.workers.killOne(rng)
		case <-ctx.Done():
			return
		}
	}
}

// awaitProgress waits until the given share of the keys was submitted.
func (r *run) awaitProgress(ctx context.Context, share float64) bool {
	for float64(r.dispatched.Load()) < share*float64(r.opts.N) {
		if !sleep(ctx, 50*time.Millisecond) {
			return false
		}
	}
	return true
}

// redisFault injects the run's Redis failure once half of the postings
// were submitted. Workers and the MCP front are left alone: they must
// reconnect by themselves.
func (r *run) redisFault(ctx context.Context) error {
	rd := r.redis
	aofBytes := func() int64 { return dirSize(filepath.Join(rd.dir, aofDir)) }
	switch r.opts.RedisFault {
	case RedisShutdown, RedisKill:
		if !r.awaitProgress(ctx, 0.5) {
			return nil
		}
		began := time.Now()
		if r.opts.RedisFault == RedisShutdown {
			if err := rd.shutdown(); err != nil {
				return err
			}
		} else {
			rd.kill()
		}
		if err := rd.start(); err != nil {
			return err
		}
		r.redisNote = fmt.Sprintf("%s(down %.1fs)", r.opts.RedisFault, time.Since(began).Seconds())
	case RedisRollback:
		if !r.awaitProgress(ctx, 0.4) {
			return nil
		}
		snap := filepath.Join(r.dir, "redis-snapshot")
		taken := time.Now()
		if err := rd.snapshot(snap); err != nil {
			return err
		}
		snapBytes := dirSize(snap)
		r.log.Info("redis AOF snapshot taken", "bytes", snapBytes)
		if !sleep(ctx, time.Until(taken.Add(r.opts.RollbackAge))) {
			return nil
		}
		began := time.Now()
		rd.kill()
		lost := aofBytes() - snapBytes
		if err := rd.restore(snap); err != nil {
			return err
		}
		if err := rd.start(); err != nil {
			return err
		}
		r.redisNote = fmt.Sprintf("rollback(%.1fs, %d AOF bytes lost, down %.1fs)", time.Since(taken).Seconds()-time.Since(began).Seconds(), lost, time.Since(began).Seconds())
	}
	r.printf("redis fault: %s", r.redisNote)
	return nil
}

func dirSize(dir string) int64 {
	var n int64
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if info, err := e.Info(); err == nil {
			n += info.Size()
		}
	}
	return n
}
