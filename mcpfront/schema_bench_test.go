package mcpfront

import (
	"encoding/json"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/taskstest"
)

// BenchmarkHeaderBindings measures what mcp-go does on every tools/call
// that carries the 2026-07-28 protocol's headers: it reads the called
// tool's whole input schema again to find its x-mcp-header bindings
// (mcp.ExtractParamHeaderBindings; sapq's tools have none), against the
// baseline of sapq's own strict decoding of a submission to the same tool,
// in the same run. Figures, not assertions (BENCHMARKS.md, scenario 3):
//
//	go test ./mcpfront -run '^$' -bench HeaderBindings -benchmem
func BenchmarkHeaderBindings(b *testing.B) {
	spec, _ := tasks.SpecOf(tasks.KindJournalEntry)
	tool := mcp.NewTool(spec.Tool, postingSchema(spec, []string{tasks.DefaultDestination}))
	raw, err := json.Marshal(taskstest.JournalEntry("bench-bindings"))
	if err != nil {
		b.Fatal(err)
	}
	if _, _, err := tasks.DecodeSubmission(tasks.KindJournalEntry, raw); err != nil {
		b.Fatal(err)
	}
	b.Run("mcp-go_bindings", func(b *testing.B) {
		for b.Loop() {
			mcp.ExtractParamHeaderBindings(&tool)
		}
		b.ReportMetric(float64(len(tool.RawInputSchema)), "schema-bytes")
	})
	b.Run("baseline_sapq_decode", func(b *testing.B) {
		for b.Loop() {
			tasks.DecodeSubmission(tasks.KindJournalEntry, raw)
		}
		b.ReportMetric(float64(len(raw)), "submission-bytes")
	})
}
