package tasks

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"unicode/utf8"
)

// FuzzFastShape checks the fast path of decodeStrict against the token walk
// it short-cuts: whatever the fast walk accepts, checkShape accepts too and
// decodes to the same value, for every kind and with the submission's
// options beside the posting. (The converse need not hold: the fast walk may
// send a valid request to the slow path.)
func FuzzFastShape(f *testing.F) {
	seeds, _ := filepath.Glob("../testdata/postings/*.json")
	for _, path := range seeds {
		raw, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	for _, s := range []string{
		`{"idempotency_key":"k","dry_run":true,"items":[{"amount":"1"}]}`,
		`{"idempotency_key":"k","idempotency_key":"k"}`,
		`{"Idempotency_key":"k"}`,
		`{"idempotency_\u006bey":"k"}`,
		`{"items":[{"amount":1}]}`,
		`{"items":null,"currency":null} `,
		`{"currency":"EUR"} {}`,
		`{"currency":"EU\"R\u00e9\n"}`,
		`{"dry_run":"yes"}`,
		`{"items":[1e5,-0.5e-3,{}]}`,
		"{\"currency\":\"\x01\"}",
		`{"items":[[[[[[[[[]]]]]]]]]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, spec := range Specs() {
			for _, extra := range []map[string]reflect.Type{nil, submitOptionFields} {
				fast := spec.New()
				ok, _ := fastShapeOK(raw, reflect.TypeOf(fast), extra)
				if !ok || !utf8.Valid(raw) {
					continue
				}
				slow := spec.New()
				if err := decodeStrictSlow(raw, slow, extra); err != nil {
					t.Fatalf("%s: the fast walk accepted what the token walk refuses (%v):\n%s", spec.Kind, err, raw)
				}
				if err := json.Unmarshal(raw, fast); err != nil {
					t.Fatalf("%s: %v", spec.Kind, err)
				}
				if !reflect.DeepEqual(fast, slow) {
					t.Fatalf("%s: the two decode differently:\n%#v\n%#v", spec.Kind, fast, slow)
				}
			}
		}
	})
}

// TestFastShapeTakesWellFormedRequests makes sure the fast path is taken
// for each kind's sample posting, with and without the submission's
// options, so that the benchmarks measure what agents get.
func TestFastShapeTakesWellFormedRequests(t *testing.T) {
	for _, spec := range Specs() {
		raw, err := os.ReadFile(filepath.Join("..", "testdata", "postings", string(spec.Kind)+".json"))
		if err != nil {
			t.Fatal(err)
		}
		typ := reflect.TypeOf(spec.New())
		if ok, saw := fastShapeOK(raw, typ, submitOptionFields); !ok || saw {
			t.Errorf("%s: fast path not taken (ok %v, options seen %v)", spec.Kind, ok, saw)
		}
		withOption := append([]byte(`{"dry_run":true,`), raw[1:]...)
		if ok, saw := fastShapeOK(withOption, typ, submitOptionFields); !ok || !saw {
			t.Errorf("%s with dry_run: fast path not taken (ok %v, options seen %v)", spec.Kind, ok, saw)
		}
		if ok, _ := fastShapeOK(withOption, typ, nil); ok {
			t.Errorf("%s: dry_run accepted where it is not a field", spec.Kind)
		}
	}
}
