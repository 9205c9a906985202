package sap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/taskstest"
)

// Two SAP systems from one destinations file: one with Basic (password from
// the environment), one with OAuth (client secret from a file); postings go
// where their company code routes them, or where they say.
func TestDestinationsFileRoutesToEachSystem(t *testing.T) {
	de := newFakeSAP(t)
	de.invoice = created("5105600001", "2026", "1010")
	us, ts, _ := newOAuthSAP(t)
	us.invoice = created("5105600777", "2026", "1710")
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "us-secret")
	if err := os.WriteFile(secretFile, []byte(testClientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SAPQ_TEST_DE_PASSWORD", testPassword)
	data := fmt.Sprintf(`{
	  "default": "s4-de",
	  "destinations": [
	    {"name": "s4-de", "url": %q, "sap_client": "100", "language": "EN", "company_codes": ["1010"],
	     "user": %q, "password_env": "SAPQ_TEST_DE_PASSWORD"},
	    {"name": "s4-us", "url": %q, "company_codes": ["1710"], "user": %q,
	     "oauth": {"token_url": %q, "client_id": %q, "client_secret_file": %q, "scopes": ["API_SUPPLIERINVOICE"]}}
	  ]}`, de.srv.URL, testUser, us.srv.URL, testUser, ts.srv.URL+"/oauth/token", testClientID, secretFile)
	f, err := ParseDestinationsFile("destinations.json", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	routes := f.Routes()
	if strings.Join(routes.Destinations, ",") != "s4-de,s4-us" || routes.Default != "s4-de" || routes.CompanyCodes["1710"] != "s4-us" {
		t.Fatalf("routes = %+v", routes)
	}
	d, err := f.OpenDestinations(Config{Timeout: 5 * time.Second, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	post := func(companyCode, destination string) (string, Document) {
		t.Helper()
		p := taskstest.SupplierInvoice("k-" + companyCode + destination)
		p.CompanyCode, p.Destination = companyCode, destination
		name, err := d.Route(p)
		if err != nil {
			t.Fatal(err)
		}
		r, err := NewRequest(p)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := d.Post(ctx, name, r, Send{Reference: "SQABCDEFGHIJKLMN"})
		if err != nil {
			t.Fatalf("post to %s: %v", name, err)
		}
		return name, doc
	}
	if name, doc := post("1010", ""); name != "s4-de" || doc.Number != "5105600001" {
		t.Errorf("1010 went to %s, document %s", name, doc.Number)
	}
	if name, doc := post("1710", ""); name != "s4-us" || doc.Number != "5105600777" {
		t.Errorf("1710 went to %s, document %s", name, doc.Number)
	}
	if name, doc := post("1010", "s4-us"); name != "s4-us" || doc.Number != "5105600777" {
		t.Errorf("1010 naming s4-us went to %s, document %s", name, doc.Number)
	}
	if name, _ := post("2020", ""); name != "s4-de" {
		t.Errorf("an unrouted company code went to %s, not the default", name)
	}
	if _, _, posts := de.counts(); posts != 2 {
		t.Errorf("s4-de got %d posts, want 2", posts)
	}
	if _, _, posts := us.counts(); posts != 2 {
		t.Errorf("s4-us got %d posts, want 2", posts)
	}

	_, err = d.Find(ctx, "s4-jp", nil, "SQABCDEFGHIJKLMN")
	if e := new(Error); !errors.As(err, &e) || e.Category != Transient || !strings.Contains(e.Message, `"s4-jp" is not configured`) {
		t.Errorf("find in an unknown destination: %v", err)
	}
}

func TestDestinationsFileRefusals(t *testing.T) {
	entry := `{"name": "s4-de", "url": "https://s4.example.com", "user": "U", "password_env": "SAPQ_X"}`
	for _, tc := range []struct{ name, data, want string }{
		{"inline password", `{"destinations": [{"name": "a", "url": "https://s4.example.com", "user": "U", "password": "secret"}]}`, `destinations[0].password`},
		{"unknown top-level key", `{"destinations": [` + entry + `], "routes": {}}`, "routes"},
		{"no destinations", `{"destinations": []}`, "lists no destination"},
		{"twice", `{"destinations": [` + entry + `,` + entry + `]}`, "destinations[1].name: s4-de is configured twice"},
		{"bad name", `{"destinations": [{"name": "s4 de", "url": "https://s4.example.com", "user": "U", "password_env": "X"}]}`, "destinations[0].name"},
		{"bad url", `{"destinations": [{"name": "a", "url": "s4.example.com", "user": "U", "password_env": "X"}]}`, "destinations[0].url"},
		{"no user", `{"destinations": [{"name": "a", "url": "https://s4.example.com", "password_env": "X"}]}`, "destinations[0].user"},
		{"no secret source", `{"destinations": [{"name": "a", "url": "https://s4.example.com", "user": "U"}]}`, "password_env"},
		{"two secret sources", `{"destinations": [{"name": "a", "url": "https://s4.example.com", "user": "U", "password_env": "X", "password_file": "/f"}]}`, "not both"},
		{"env name", `{"destinations": [{"name": "a", "url": "https://s4.example.com", "user": "U", "password_env": "$X"}]}`, "password_env"},
		{"oauth and password", `{"destinations": [{"name": "a", "url": "https://s4.example.com", "user": "U", "password_env": "X", "oauth": {"token_url": "https://t", "client_id": "c", "client_secret_env": "Y"}}]}`, "exclude each other"},
		{"oauth without secret", `{"destinations": [{"name": "a", "url": "https://s4.example.com", "user": "U", "oauth": {"token_url": "https://t", "client_id": "c"}}]}`, "client_secret_env"},
		{"oauth inline secret", `{"destinations": [{"name": "a", "url": "https://s4.example.com", "user": "U", "oauth": {"token_url": "https://t", "client_id": "c", "client_secret": "s"}}]}`, "client_secret"},
		{"company code twice", `{"destinations": [{"name": "a", "url": "https://a.example.com", "user": "U", "password_env": "X", "company_codes": ["1010"]},
			{"name": "b", "url": "https://b.example.com", "user": "U", "password_env": "X", "company_codes": ["1010"]}]}`, "company code 1010 is routed to a already"},
		{"bad company code", `{"destinations": [{"name": "a", "url": "https://a.example.com", "user": "U", "password_env": "X", "company_codes": ["10101"]}]}`, "company_codes[0]"},
		{"unknown default", `{"default": "b", "destinations": [` + entry + `]}`, `default: names "b"`},
	} {
		_, err := ParseDestinationsFile("dest.json", []byte(tc.data))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "dest.json") {
			t.Errorf("%s: err = %v, want it to name dest.json and say %q", tc.name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret\"") {
			t.Errorf("%s: the error quotes the inline secret: %v", tc.name, err)
		}
	}
}

func TestDestinationsFileSecretsMustExist(t *testing.T) {
	data := `{"destinations": [
	  {"name": "a", "url": "https://a.example.com", "user": "U", "password_env": "SAPQ_TEST_UNSET_PASSWORD"},
	  {"name": "b", "url": "https://b.example.com", "user": "U", "password_file": "/nonexistent/secret"},
	  {"name": "c", "url": "https://c.example.com", "user": "U", "password_env": "SAPQ_TEST_SET_PASSWORD", "ca_file": "/nonexistent/ca.pem"}]}`
	t.Setenv("SAPQ_TEST_SET_PASSWORD", testPassword)
	f, err := ParseDestinationsFile("dest.json", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Configs(Config{})
	for _, want := range []string{"destinations[0] (a): environment variable SAPQ_TEST_UNSET_PASSWORD is not set", "destinations[1] (b): secret file", "destinations[2] (c): ca_file"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to say %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), testPassword) {
		t.Errorf("error shows a password: %v", err)
	}
}

func TestSingleDestinationTakesEverything(t *testing.T) {
	f := newFakeSAP(t)
	d, err := SingleDestination(tasks.DefaultDestination, f.client())
	if err != nil {
		t.Fatal(err)
	}
	p := taskstest.JournalEntry("k")
	p.CompanyCode = "9999"
	if name, err := d.Route(p); err != nil || name != tasks.DefaultDestination {
		t.Errorf("Route = %q, %v", name, err)
	}
	if _, err := SingleDestination("bad name", f.client()); err == nil {
		t.Error("a malformed name was accepted")
	}
}
