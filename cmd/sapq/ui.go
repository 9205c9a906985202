package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"

	"github.com/sapq/sapq/tasks/ledger"
)

func runUI(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("ui", flag.ContinueOnError)
	var e envDefaults
	var rf redisFlags
	rf.register(fs, &e)
	addr := fs.String("addr", env("UI_ADDR", "127.0.0.1:8082"), "listen address (env SAPQ_UI_ADDR)")
	readOnly := fs.Bool("read-only", e.bool("UI_READ_ONLY", false), "view only: no run, delete or archive buttons (env SAPQ_UI_READ_ONLY)")
	if err := e.parse(fs, args, rf.check); err != nil {
		return err
	}
	log, err := newLogger()
	if err != nil {
		return err
	}
	token, err := secret("UI_TOKEN")
	if err != nil {
		return err
	}
	if token == "" {
		return errors.New("no UI token: set SAPQ_UI_TOKEN or SAPQ_UI_TOKEN_FILE (the Asynq UI has no authentication of its own)")
	}
	// asynqmon opens connections of its own; this client checks Redis at
	// start as every process does, and answers /readyz.
	rdb, err := rf.client(ctx, log)
	if err != nil {
		return err
	}
	defer rdb.Close()
	ui := newUI(rf.target.connOpt(), *readOnly)
	defer ui.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	var ready readiness
	ready.add("redis", pingRedis(rdb))
	mux := opsMux(newRegistry(), &ready)
	mux.Handle("/ui/", requireToken(token, ui))
	mux.Handle("/", http.RedirectHandler("/ui/", http.StatusFound))
	log.Info("Asynq UI listening", "url", "http://"+ln.Addr().String()+"/ui/")
	return serve(ctx, ln, mux)
}

// newUI mounts asynqmon at /ui. asynqmon opens its own Redis connections,
// from the same target as the rest of the process. Payloads are shown as
// sapq wrote them (job ID, caller and the posting); they hold no secrets.
func newUI(redisOpt asynq.RedisConnOpt, readOnly bool) *asynqmon.HTTPHandler {
	return asynqmon.New(asynqmon.Options{
		RootPath:     "/ui",
		RedisConnOpt: redisOpt,
		ReadOnly:     readOnly,
		PayloadFormatter: asynqmon.PayloadFormatterFunc(func(taskType string, payload []byte) string {
			p, err := ledger.ParseTaskPayload(payload)
			if err != nil {
				return string(payload)
			}
			b, _ := json.MarshalIndent(p, "", "  ")
			return string(b)
		}),
	})
}
