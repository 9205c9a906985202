package tasks_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/sapq/sapq/tasks"
)

// FuzzDecode feeds arbitrary bytes to both kinds: Decode never panics, every
// refusal is a field-level ValidationError, and whatever it accepts has exact
// amounts and survives a JSON round trip unchanged.
func FuzzDecode(f *testing.F) {
	seeds, _ := filepath.Glob("../testdata/postings/*.json")
	for _, path := range seeds {
		raw, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte(`{"items":[{"amount":1},"x",{"gl_account":["y"]}],"Currency":"EUR","currency":null}`))
	f.Add([]byte(`{"idempotency_key":"k","currency":"JPY","items":[{"amount":"1e2"},{"amount":"-0.5"}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, kind := range tasks.Kinds {
			p, err := tasks.Decode(kind, raw)
			if err != nil {
				var verr *tasks.ValidationError
				if !errors.As(err, &verr) || len(verr.Fields) == 0 {
					t.Fatalf("%s: refusal %v is not a field-level ValidationError", kind, err)
				}
				continue
			}
			again, err := tasks.Decode(kind, encode(t, p))
			if err != nil {
				t.Fatalf("%s: re-encoded posting refused: %v", kind, err)
			}
			if a, b := encode(t, p), encode(t, again); string(a) != string(b) {
				t.Fatalf("%s: round trip changed the posting:\n%s\n%s", kind, a, b)
			}
		}
	})
}
