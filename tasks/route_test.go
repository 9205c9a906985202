package tasks_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/taskstest"
)

// Every kind takes the common `destination` argument, and reports it to
// routing: a kind without it could not be sent to a named SAP system.
func TestEveryKindNamesItsDestination(t *testing.T) {
	for _, spec := range tasks.Specs() {
		found := false
		for _, fr := range tasks.Rules(reflect.TypeOf(spec.New())) {
			if len(fr.Path) == 1 && fr.Path[0] == "destination" && fr.Rule.Kind == tasks.RuleName && !fr.Rule.Required {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no optional field `json:\"destination,omitempty\" sapq:\"name,64\"`", spec.Kind)
			continue
		}
		raw, err := os.ReadFile(filepath.Join("../testdata/postings", string(spec.Kind)+".json"))
		if err != nil {
			t.Errorf("%s: %v", spec.Kind, err)
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		m["destination"] = "s4-us"
		raw, _ = json.Marshal(m)
		p, err := tasks.Decode(spec.Kind, raw)
		if err != nil {
			t.Errorf("%s with a destination: %v", spec.Kind, err)
			continue
		}
		if got := p.Facts().Destination; got != "s4-us" {
			t.Errorf("%s: Facts().Destination = %q, want s4-us", spec.Kind, got)
		}
		m["destination"] = "s4 us!"
		raw, _ = json.Marshal(m)
		if _, err := tasks.Decode(spec.Kind, raw); !hasField(err, "destination") {
			t.Errorf("%s: a malformed destination name: %v", spec.Kind, err)
		}
	}
}

func hasField(err error, field string) bool {
	var v *tasks.ValidationError
	if !errors.As(err, &v) {
		return false
	}
	for _, f := range v.Fields {
		if f.Field == field {
			return true
		}
	}
	return false
}

func TestRoute(t *testing.T) {
	routes := tasks.Routes{
		Destinations: []string{"s4-de", "s4-us", "s4-test"},
		Default:      "s4-de",
		CompanyCodes: map[string]string{"1710": "s4-us"},
	}
	if err := routes.Validate(); err != nil {
		t.Fatal(err)
	}
	noDefault := routes
	noDefault.Default = ""
	post := func(companyCode, destination string) tasks.Posting {
		p := taskstest.SupplierInvoice("k")
		p.CompanyCode, p.Destination = companyCode, destination
		return p
	}
	for _, tc := range []struct {
		name      string
		routes    tasks.Routes
		p         tasks.Posting
		want      string
		wantField string
		wantText  string
	}{
		{"routed company code", routes, post("1710", ""), "s4-us", "", ""},
		{"default", routes, post("1010", ""), "s4-de", "", ""},
		{"named wins over the route", routes, post("1710", "s4-test"), "s4-test", "", ""},
		{"named, not configured", routes, post("1010", "s4-jp"), "", "destination", `no SAP destination "s4-jp" is configured; configured: s4-de, s4-us, s4-test`},
		{"no route, no default", noDefault, post("1010", ""), "", "company_code", "no SAP destination serves company code 1010"},
		{"no route, no default, named", noDefault, post("1010", "s4-de"), "s4-de", "", ""},
		{"single", tasks.SingleRoute(tasks.DefaultDestination), post("9999", ""), tasks.DefaultDestination, "", ""},
	} {
		got, err := tc.routes.Route(tc.p)
		switch {
		case tc.wantField == "" && (err != nil || got != tc.want):
			t.Errorf("%s: Route = %q, %v; want %q", tc.name, got, err, tc.want)
		case tc.wantField != "" && (!hasField(err, tc.wantField) || !strings.Contains(err.Error(), tc.wantText)):
			t.Errorf("%s: Route = %q, %v; want an error on %s saying %q", tc.name, got, err, tc.wantField, tc.wantText)
		}
	}

	for name, bad := range map[string]tasks.Routes{
		"none":                {},
		"bad name":            {Destinations: []string{"s4 de"}},
		"twice":               {Destinations: []string{"a", "a"}},
		"unknown default":     {Destinations: []string{"a"}, Default: "b"},
		"route to nowhere":    {Destinations: []string{"a"}, CompanyCodes: map[string]string{"1010": "b"}},
		"name longer than 64": {Destinations: []string{strings.Repeat("a", 65)}},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%s: Validate passed", name)
		}
	}
}
