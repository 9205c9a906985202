package tasks

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// A destination is one SAP system postings go to, under a name that is part
// of every posting's SAP-side identity (see Identity). A posting names its
// destination in its optional `destination` field, or is routed by its
// company code; Routes decides.

// MaxDestinationName is the longest destination name.
const MaxDestinationName = 64

// DestinationNamePattern is what a destination name looks like.
const DestinationNamePattern = `^[A-Za-z0-9][A-Za-z0-9._-]*$`

var destinationName = regexp.MustCompile(DestinationNamePattern)

// ValidDestinationName reports whether s can name a destination.
func ValidDestinationName(s string) bool {
	return len(s) <= MaxDestinationName && destinationName.MatchString(s)
}

func (c *checker) checkName(field, v string, max int) {
	if len(v) > max || !destinationName.MatchString(v) {
		c.add(field, "must be a destination name: 1-%d letters, digits, '.', '_' or '-', starting with a letter or digit; got %s", max, quote(v))
	}
}

// Routes say which destination each posting goes to: the one it names, or
// the one its company code is routed to, or the default. The MCP front
// routes every submission so that one that cannot be routed is refused at
// once; the worker routes a job again before its first call, and from then
// on keeps the destination it called.
type Routes struct {
	// Destinations are the names of every configured destination.
	Destinations []string
	// Default takes the postings of company codes without a route; empty
	// means such postings are refused.
	Default string
	// CompanyCodes routes company codes to destinations.
	CompanyCodes map[string]string
}

// SingleRoute is the routes of one destination that takes every posting.
func SingleRoute(name string) Routes {
	return Routes{Destinations: []string{name}, Default: name}
}

// Validate checks that the routes lead to configured destinations only.
func (r Routes) Validate() error {
	var errs []error
	if len(r.Destinations) == 0 {
		errs = append(errs, errors.New("no destination"))
	}
	seen := map[string]bool{}
	for _, d := range r.Destinations {
		if !ValidDestinationName(d) {
			errs = append(errs, fmt.Errorf("destination name %q: 1-%d letters, digits, '.', '_' or '-', starting with a letter or digit", d, MaxDestinationName))
		}
		if seen[d] {
			errs = append(errs, fmt.Errorf("destination %q is configured twice", d))
		}
		seen[d] = true
	}
	if r.Default != "" && !seen[r.Default] {
		errs = append(errs, fmt.Errorf("default destination %q is not configured", r.Default))
	}
	for _, cc := range sortedKeys(r.CompanyCodes) {
		if d := r.CompanyCodes[cc]; !seen[d] {
			errs = append(errs, fmt.Errorf("company code %s is routed to %q, which is not configured", cc, d))
		}
	}
	return errors.Join(errs...)
}

// Route returns the destination of a valid posting. A posting that names a
// destination that is not configured, or whose company code has no route
// when there is no default, is refused with a *ValidationError naming the
// field.
func (r Routes) Route(p Posting) (string, error) {
	f := p.Facts()
	var c checker
	if f.Destination != "" {
		if !slices.Contains(r.Destinations, f.Destination) {
			c.add("destination", "no SAP destination %s is configured; configured: %s", quote(f.Destination), strings.Join(r.Destinations, ", "))
			return "", c.err()
		}
		return f.Destination, nil
	}
	for _, u := range f.Units {
		if u.Kind != UnitCompanyCode {
			continue
		}
		if d, ok := r.CompanyCodes[u.Value]; ok {
			return d, nil
		}
		if r.Default == "" {
			c.add(u.Field, "no SAP destination serves company code %s (routed: %s) and there is no default destination; name one in destination (configured: %s)",
				u.Value, strings.Join(sortedKeys(r.CompanyCodes), ", "), strings.Join(r.Destinations, ", "))
			return "", c.err()
		}
	}
	if r.Default == "" {
		c.add("destination", "this posting has no company code to route it by and there is no default destination; name one (configured: %s)", strings.Join(r.Destinations, ", "))
		return "", c.err()
	}
	return r.Default, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
