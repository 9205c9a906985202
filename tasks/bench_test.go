package tasks_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/sapq/sapq/tasks"
)

// BenchmarkDecode measures the strict decoding of each kind's sample
// posting (testdata/postings/<kind>.json): shape check, decode and
// validation, as a submission gets it (Decode, DecodeSubmission) and as a
// worker reads its stored payload (Job.Posting), against the baseline of a
// plain json.Unmarshal into the same type, in the same run. Figures, not
// assertions:
//
//	go test ./tasks -run '^$' -bench Decode -benchmem
func BenchmarkDecode(b *testing.B) {
	for _, spec := range tasks.Specs() {
		raw, err := os.ReadFile(filepath.Join("..", "testdata", "postings", string(spec.Kind)+".json"))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tasks.Decode(spec.Kind, raw); err != nil {
			b.Fatalf("%s: the sample does not decode: %v", spec.Kind, err)
		}
		b.Run(string(spec.Kind)+"/baseline=json.Unmarshal", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				if err := json.Unmarshal(raw, spec.New()); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(string(spec.Kind)+"/Decode", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				if _, err := tasks.Decode(spec.Kind, raw); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(string(spec.Kind)+"/DecodeSubmission", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				if _, _, err := tasks.DecodeSubmission(spec.Kind, raw); err != nil {
					b.Fatal(err)
				}
			}
		})
		p, _ := tasks.Decode(spec.Kind, raw)
		canonical, _ := json.Marshal(p)
		job := tasks.Job{Kind: spec.Kind, Payload: canonical}
		b.Run(string(spec.Kind)+"/Job.Posting", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(canonical)))
			for b.Loop() {
				if _, err := job.Posting(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
