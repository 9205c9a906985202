package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
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

// The SAP settings refuse to start on what they cannot use, naming the
// variable: a CA bundle without a certificate, a destinations file that
// does not parse or that the single-system settings contradict.
func TestBadSAPConfigurationRefusesToStart(t *testing.T) {
	_, db := redisSrv.NewDB(t)
	url := fmt.Sprintf("redis://%s/%d", redisSrv.Addr, db)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	noCert := write("ca.pem", "not a certificate\n")
	badFile := write("bad.json", `{"destinations": [{"name": "a", "url": "https://a.example.com", "user": "U", "password": "inline"}]}`)
	goodFile := write("good.json", `{"destinations": [{"name": "a", "url": "https://a.example.com", "user": "U", "password_env": "SAPQ_TEST_A_PASSWORD"}]}`)
	for _, c := range []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"a CA bundle without a certificate", map[string]string{"SAPQ_SAP_CA_FILE": noCert}, []string{"SAPQ_SAP_CA_FILE", "no PEM certificate"}},
		{"a missing CA bundle", map[string]string{"SAPQ_SAP_CA_FILE": filepath.Join(dir, "missing.pem")}, []string{"SAPQ_SAP_CA_FILE"}},
		{"a destinations file with an inline password", map[string]string{"SAPQ_SAP_DESTINATIONS_FILE": badFile}, []string{"SAPQ_SAP_DESTINATIONS_FILE", "destinations[0].password"}},
		{"a destinations file beside single-system settings", map[string]string{"SAPQ_SAP_DESTINATIONS_FILE": goodFile, "SAPQ_SAP_URL": "https://s4.example.com"}, []string{"SAPQ_SAP_DESTINATIONS_FILE", "SAPQ_SAP_URL"}},
		{"a secret the destinations file names but nobody set", map[string]string{"SAPQ_SAP_DESTINATIONS_FILE": goodFile}, []string{"SAPQ_TEST_A_PASSWORD is not set"}},
		{"OAuth without a client ID", map[string]string{"SAPQ_SAP_OAUTH_TOKEN_URL": "https://auth.example.com/token"}, []string{"SAPQ_SAP_OAUTH_CLIENT_ID"}},
		{"a malformed destination name", map[string]string{"SAPQ_SAP_DESTINATION": "s4 de"}, []string{"SAPQ_SAP_DESTINATION"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("SAPQ_REDIS_URL", url)
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			err := runWorker(ctx, []string{"--metrics-addr", ""}, io.Discard)
			if err == nil {
				t.Fatalf("the worker started")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %s", err, w)
				}
			}
			if strings.Contains(err.Error(), "inline") {
				t.Errorf("error shows the inline secret: %v", err)
			}
		})
	}
}
