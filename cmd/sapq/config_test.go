package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
)

// A SAPQ_* value that does not parse, or a configuration that contradicts
// itself, refuses to start and names the variable, rather than falling back
// on a default nobody asked for.
func TestBadConfigurationRefusesToStart(t *testing.T) {
	_, db := redisSrv.NewDB(t)
	url := fmt.Sprintf("redis://%s/%d", redisSrv.Addr, db)
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{"a duration without a unit", map[string]string{"SAPQ_SAP_TIMEOUT": "5"}, nil, []string{"SAPQ_SAP_TIMEOUT", `"5"`}},
		{"a number in words", map[string]string{"SAPQ_CONCURRENCY": "ten"}, nil, []string{"SAPQ_CONCURRENCY", `"ten"`}},
		{"every problem at once", map[string]string{"SAPQ_CONCURRENCY": "ten", "SAPQ_RETENTION": "a week"}, nil, []string{"SAPQ_CONCURRENCY", "SAPQ_RETENTION"}},
		{"a reconcile wait shorter than the SAP timeout", map[string]string{"SAPQ_SAP_TIMEOUT": "30s", "SAPQ_RECONCILE_AFTER": "10s"}, nil, []string{"SAPQ_RECONCILE_AFTER", "SAPQ_SAP_TIMEOUT"}},
		{"zero concurrency", nil, []string{"--concurrency", "0"}, []string{"--concurrency", "greater than zero"}},
		{"a negative retention", map[string]string{"SAPQ_RETENTION": "-1h"}, nil, []string{"SAPQ_RETENTION"}},
		{"an unknown log level", map[string]string{"SAPQ_LOG_LEVEL": "loud"}, nil, []string{"SAPQ_LOG_LEVEL"}},
		{"an unknown boolean", map[string]string{"SAPQ_REDIS_UNSAFE": "sometimes"}, nil, []string{"SAPQ_REDIS_UNSAFE"}},
		{"a cap in words", map[string]string{"SAPQ_SAP_MAX_IN_FLIGHT": "many"}, nil, []string{"SAPQ_SAP_MAX_IN_FLIGHT", `"many"`}},
		{"a negative cap", map[string]string{"SAPQ_SAP_MAX_IN_FLIGHT": "-1"}, nil, []string{"SAPQ_SAP_MAX_IN_FLIGHT", "0 (no cap) or more"}},
		{"an unparsable Redis URL", map[string]string{"SAPQ_REDIS_URL": "redis//nowhere"}, nil, []string{"SAPQ_REDIS_URL"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("SAPQ_REDIS_URL", url)
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // a worker that did start would stop at once
			var out bytes.Buffer
			err := runWorker(ctx, append([]string{"--metrics-addr", ""}, c.args...), &out)
			if err == nil {
				t.Fatalf("the worker started")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %s", err, w)
				}
			}
		})
	}
}
