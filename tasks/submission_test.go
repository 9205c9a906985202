package tasks_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/sapq/sapq/tasks"
)

func TestDecodeSubmissionTakesTheOptionsBesideThePosting(t *testing.T) {
	raw, err := os.ReadFile("../testdata/postings/journal_entry.json")
	if err != nil {
		t.Fatal(err)
	}
	plain, err := tasks.Decode(tasks.KindJournalEntry, raw)
	if err != nil {
		t.Fatal(err)
	}
	with := []byte(strings.Replace(string(raw), "{", `{"dry_run": true, `, 1))
	p, opts, err := tasks.DecodeSubmission(tasks.KindJournalEntry, with)
	if err != nil || !opts.DryRun {
		t.Fatalf("DecodeSubmission = %+v, %v", opts, err)
	}
	a, _, _ := tasks.Fingerprint(plain)
	b, _, _ := tasks.Fingerprint(p)
	if a != b {
		t.Fatal("dry_run changed the posting's fingerprint")
	}
	if _, err := tasks.Decode(tasks.KindJournalEntry, with); err == nil || !strings.Contains(err.Error(), "dry_run: unknown field") {
		t.Fatalf("Decode of a posting with dry_run = %v, want the option refused where it does not belong", err)
	}
	bad := []byte(strings.Replace(string(raw), "{", `{"dry_run": "yes", "dry_runs": 1, `, 1))
	_, _, err = tasks.DecodeSubmission(tasks.KindJournalEntry, bad)
	var verr *tasks.ValidationError
	if !errors.As(err, &verr) || !strings.Contains(err.Error(), "dry_run: must be") || !strings.Contains(err.Error(), "dry_runs: unknown field") {
		t.Fatalf("DecodeSubmission of bad options = %v", err)
	}
	if _, opts, err := tasks.DecodeSubmission(tasks.KindJournalEntry, raw); err != nil || opts.DryRun {
		t.Fatalf("DecodeSubmission without options = %+v, %v", opts, err)
	}
}
