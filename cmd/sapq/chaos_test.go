package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sapq/sapq/internal/testutil"
)

// chaosChildEnv makes this test binary act as sapq: sapq chaos starts its
// processes from its own executable, which in a test is the test binary.
// The name has no SAPQ_ prefix: the harness strips those from the
// children's environment.
const chaosChildEnv = "CHAOS_TEST_BINARY_IS_SAPQ"

func init() {
	if os.Getenv(chaosChildEnv) == "1" {
		main()
		os.Exit(0)
	}
}

func TestChaosRefusesBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--redis-fault", "flood"}, "--redis-fault"},
		{[]string{"--sap-timeout", "5s", "--slow-latency", "3s"}, "must outlast the SAP timeout"},
		{[]string{"--slow-latency", "3s", "--reconcile-after", "2s"}, "reconcile wait"},
		{[]string{"extra"}, "unexpected arguments"},
	} {
		err := runChaos(context.Background(), tc.args, &testutil.SyncBuffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("sapq chaos %v: %v, want an error mentioning %q", tc.args, err, tc.want)
		}
	}
}

// TestChaosEndToEnd runs a small chaos run, with this test binary as sapq:
// redis-server, the simulator, the MCP front and two workers are processes
// of their own. It has no worker kills, whose stranded tasks take asynq a
// minute to recover: .ci/run's runs have them.
func TestChaosEndToEnd(t *testing.T) {
	t.Setenv(chaosChildEnv, "1") // inherited by the children only; this process checked it at init
	out := &testutil.SyncBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	err := runChaos(ctx, []string{"--n", "24", "--rate", "40", "--kill-every", "-1s", "--redis-fault", "shutdown", "--timeout", "3m"}, out)
	if err != nil {
		t.Fatalf("sapq chaos: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "chaos PASS: breaches=0 postings=24 ") {
		t.Errorf("no passing summary:\n%s", out.String())
	}
	if strings.Contains(out.String(), "kept ") {
		t.Errorf("a passing run kept its directory:\n%s", out.String())
	}
}
