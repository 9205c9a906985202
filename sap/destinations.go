package sap

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/sapq/sapq/tasks"
)

// Destinations are the SAP systems postings go to, one Client each, and the
// routes that choose among them (tasks.Routes). It is what the worker
// posts through: Route names a posting's destination, Post and Find call
// it.
type Destinations struct {
	routes  tasks.Routes
	clients map[string]*Client
}

// NewDestinations returns the destinations of routes, with a client for
// each of them.
func NewDestinations(routes tasks.Routes, clients map[string]*Client) (*Destinations, error) {
	if err := routes.Validate(); err != nil {
		return nil, fmt.Errorf("sap: destinations: %w", err)
	}
	for _, name := range routes.Destinations {
		if clients[name] == nil {
			return nil, fmt.Errorf("sap: destinations: no client for %s", name)
		}
	}
	for name := range clients {
		if !slices.Contains(routes.Destinations, name) {
			return nil, fmt.Errorf("sap: destinations: client for %s, which the routes do not name", name)
		}
	}
	return &Destinations{routes: routes, clients: clients}, nil
}

// SingleDestination is one SAP system that takes every posting.
func SingleDestination(name string, c *Client) (*Destinations, error) {
	return NewDestinations(tasks.SingleRoute(name), map[string]*Client{name: c})
}

// Names lists the destinations in their configured order.
func (d *Destinations) Names() []string { return slices.Clone(d.routes.Destinations) }

// Routes are the routes among the destinations.
func (d *Destinations) Routes() tasks.Routes { return d.routes }

// Route names the destination of a posting that has not been sent yet (see
// tasks.Routes.Route). Once a posting was sent, its destination is the
// one it was sent to, whatever the routes say now.
func (d *Destinations) Route(p tasks.Posting) (string, error) { return d.routes.Route(p) }

// Client returns the client of a destination.
func (d *Destinations) Client(name string) (*Client, bool) {
	c, ok := d.clients[name]
	return c, ok
}

// Post sends the request to the destination.
func (d *Destinations) Post(ctx context.Context, destination string, r Request, s Send) (Document, error) {
	c, err := d.client(destination, "post")
	if err != nil {
		return Document{}, err
	}
	return c.Post(ctx, r, s)
}

// Find looks for the request's document in the destination.
func (d *Destinations) Find(ctx context.Context, destination string, r Request, reference string) (Match, error) {
	c, err := d.client(destination, "find")
	if err != nil {
		return Match{}, err
	}
	return c.Find(ctx, r, reference)
}

func (d *Destinations) client(name, op string) (*Client, error) {
	c, ok := d.clients[name]
	if !ok {
		// Nothing was sent anywhere: a job bound to a destination that
		// is no longer configured waits for it to come back.
		return nil, &Error{Category: Transient, Op: op,
			Message: fmt.Sprintf("SAP destination %q is not configured (configured: %s)", name, strings.Join(d.routes.Destinations, ", "))}
	}
	return c, nil
}

// CloseIdleConnections closes every client's idle connections.
func (d *Destinations) CloseIdleConnections() {
	for _, c := range d.clients {
		c.CloseIdleConnections()
	}
}

// DestinationsFile is a parsed destinations file: JSON naming each SAP
// system with its connection, credentials and company codes, and the
// default destination. Secrets are never in the file: it names the
// environment variable or the file that holds each one.
//
//	{
//	  "default": "s4-de",
//	  "destinations": [
//	    {"name": "s4-de", "url": "https://s4-de.example.com", "sap_client": "100", "language": "EN",
//	     "company_codes": ["1010", "1020"], "ca_file": "/etc/sapq/company-ca.pem",
//	     "user": "SAPQ_COMM", "password_env": "SAPQ_SAP_DE_PASSWORD"},
//	    {"name": "s4-us", "url": "https://my-s4-us.example.com", "company_codes": ["1710"],
//	     "user": "SAPQ_COMM",
//	     "oauth": {"token_url": "https://auth.example.com/oauth/token", "client_id": "sapq",
//	               "client_secret_file": "/run/secrets/s4-us-client-secret"}}
//	  ]
//	}
//
// Parsing checks the structure and the routes, and reads no secret: the MCP
// front needs only the routes. Configs reads the secrets and CA bundles.
type DestinationsFile struct {
	path string
	file destinationsJSON
}

type destinationsJSON struct {
	Default      string            `json:"default,omitempty"`
	Destinations []destinationJSON `json:"destinations"`
}

type destinationJSON struct {
	Name         string     `json:"name"`
	URL          string     `json:"url"`
	SAPClient    string     `json:"sap_client,omitempty"`
	Language     string     `json:"language,omitempty"`
	CompanyCodes []string   `json:"company_codes,omitempty"`
	CAFile       string     `json:"ca_file,omitempty"`
	User         string     `json:"user"`
	PasswordEnv  string     `json:"password_env,omitempty"`
	PasswordFile string     `json:"password_file,omitempty"`
	OAuth        *oauthJSON `json:"oauth,omitempty"`
}

type oauthJSON struct {
	TokenURL         string   `json:"token_url"`
	ClientID         string   `json:"client_id"`
	ClientSecretEnv  string   `json:"client_secret_env,omitempty"`
	ClientSecretFile string   `json:"client_secret_file,omitempty"`
	Scopes           []string `json:"scopes,omitempty"`
}

var (
	companyCodePattern = regexp.MustCompile(`^[A-Z0-9]{1,4}$`)
	envNamePattern     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// LoadDestinationsFile reads and checks a destinations file.
func LoadDestinationsFile(path string) (*DestinationsFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("destinations file: %w", err)
	}
	return ParseDestinationsFile(path, data)
}

// ParseDestinationsFile checks a destinations file's content; path names
// it in errors. Unknown keys are refused, and every problem is reported at
// once with its place in the file.
func ParseDestinationsFile(path string, data []byte) (*DestinationsFile, error) {
	var f destinationsJSON
	if err := tasks.DecodeStrict(data, &f); err != nil {
		return nil, fmt.Errorf("destinations file %s: %w", path, err)
	}
	var problems []string
	fail := func(at, format string, args ...any) {
		problems = append(problems, at+": "+fmt.Sprintf(format, args...))
	}
	secretSource := func(at, what, env, file string) {
		switch {
		case env == "" && file == "":
			fail(at, "the %s comes from %s_env (an environment variable's name) or %s_file (a file's path); never from the file itself", what, what, what)
		case env != "" && file != "":
			fail(at, "give %s_env or %s_file, not both", what, what)
		case env != "" && !envNamePattern.MatchString(env):
			fail(at+"."+what+"_env", "must name an environment variable, like SAPQ_SAP_DE_PASSWORD")
		}
	}
	entries := map[string]destinationJSON{}
	routes := tasks.Routes{Default: f.Default, CompanyCodes: map[string]string{}}
	if len(f.Destinations) == 0 {
		fail("destinations", "lists no destination")
	}
	for i, d := range f.Destinations {
		at := fmt.Sprintf("destinations[%d]", i)
		switch {
		case !tasks.ValidDestinationName(d.Name):
			fail(at+".name", "must be 1-%d letters, digits, '.', '_' or '-', starting with a letter or digit", tasks.MaxDestinationName)
		case entries[d.Name].Name != "":
			fail(at+".name", "%s is configured twice", d.Name)
		}
		if u, err := url.Parse(d.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" {
			fail(at+".url", "must be an absolute http(s) URL without credentials or query, like https://s4.example.com")
		}
		if d.User == "" {
			fail(at+".user", "is required: the communication user (with OAuth, the user journal entries are created by)")
		}
		if d.OAuth == nil {
			secretSource(at, "password", d.PasswordEnv, d.PasswordFile)
		} else {
			if d.PasswordEnv != "" || d.PasswordFile != "" {
				fail(at, "a password and oauth exclude each other")
			}
			if d.OAuth.TokenURL == "" {
				fail(at+".oauth.token_url", "is required")
			}
			if d.OAuth.ClientID == "" {
				fail(at+".oauth.client_id", "is required")
			}
			secretSource(at+".oauth", "client_secret", d.OAuth.ClientSecretEnv, d.OAuth.ClientSecretFile)
		}
		for j, cc := range d.CompanyCodes {
			ccAt := fmt.Sprintf("%s.company_codes[%d]", at, j)
			switch other, taken := routes.CompanyCodes[cc]; {
			case !companyCodePattern.MatchString(cc):
				fail(ccAt, "%q is not a company code (1-4 upper-case letters or digits)", cc)
			case taken:
				fail(ccAt, "company code %s is routed to %s already", cc, other)
			default:
				routes.CompanyCodes[cc] = d.Name
			}
		}
		if d.Name != "" {
			entries[d.Name] = d
			routes.Destinations = append(routes.Destinations, d.Name)
		}
	}
	if f.Default != "" && entries[f.Default].Name == "" {
		fail("default", "names %q, which is not in destinations", f.Default)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("destinations file %s: %s", path, strings.Join(problems, "; "))
	}
	if err := routes.Validate(); err != nil {
		return nil, fmt.Errorf("destinations file %s: %w", path, err)
	}
	return &DestinationsFile{path: path, file: f}, nil
}

// Routes are the file's routes.
func (f *DestinationsFile) Routes() tasks.Routes {
	r := tasks.Routes{Default: f.file.Default, CompanyCodes: map[string]string{}}
	for _, d := range f.file.Destinations {
		r.Destinations = append(r.Destinations, d.Name)
		for _, cc := range d.CompanyCodes {
			r.CompanyCodes[cc] = d.Name
		}
	}
	return r
}

// Configs returns each destination's client configuration, with its secrets
// read from the environment or from files and its CA bundle loaded; base
// gives what the file does not say (Timeout, Logger). A secret that is not
// set, or a file that cannot be read, is an error naming where it should be.
func (f *DestinationsFile) Configs(base Config) (map[string]Config, error) {
	out := map[string]Config{}
	var errs []error
	for i, d := range f.file.Destinations {
		at := fmt.Sprintf("destinations file %s: destinations[%d] (%s)", f.path, i, d.Name)
		cfg := base
		cfg.BaseURL, cfg.Client, cfg.Language, cfg.User = d.URL, d.SAPClient, d.Language, d.User
		cfg.Password, cfg.OAuth, cfg.RootCAs = "", nil, nil
		var err error
		if d.OAuth == nil {
			cfg.Password, err = readSecret(d.PasswordEnv, d.PasswordFile)
		} else {
			o := &OAuth{TokenURL: d.OAuth.TokenURL, ClientID: d.OAuth.ClientID, Scopes: d.OAuth.Scopes}
			o.ClientSecret, err = readSecret(d.OAuth.ClientSecretEnv, d.OAuth.ClientSecretFile)
			cfg.OAuth = o
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", at, err))
			continue
		}
		if d.CAFile != "" {
			if cfg.RootCAs, err = LoadCAFile(d.CAFile); err != nil {
				errs = append(errs, fmt.Errorf("%s: ca_file: %w", at, err))
				continue
			}
		}
		out[d.Name] = cfg
	}
	return out, errors.Join(errs...)
}

// Addresses returns each destination's configuration without its secrets:
// where it is and who logs on, for what describes calls without making
// them (a console's preview).
func (f *DestinationsFile) Addresses() map[string]Config {
	out := map[string]Config{}
	for _, d := range f.file.Destinations {
		out[d.Name] = Config{BaseURL: d.URL, Client: d.SAPClient, Language: d.Language, User: d.User}
	}
	return out
}

// readSecret reads a secret from the environment variable or the file named.
func readSecret(env, file string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("secret file: %w", err)
		}
		s := strings.TrimRight(string(b), "\r\n")
		if s == "" {
			return "", fmt.Errorf("secret file %s is empty", file)
		}
		return s, nil
	}
	s, ok := os.LookupEnv(env)
	if !ok || s == "" {
		return "", fmt.Errorf("environment variable %s is not set", env)
	}
	return s, nil
}

// OpenDestinations builds a client for every destination of the file.
func (f *DestinationsFile) OpenDestinations(base Config) (*Destinations, error) {
	cfgs, err := f.Configs(base)
	if err != nil {
		return nil, err
	}
	clients := map[string]*Client{}
	for name, cfg := range cfgs {
		c, err := New(cfg)
		if err != nil {
			return nil, fmt.Errorf("destinations file %s: destination %s: %w", f.path, name, err)
		}
		clients[name] = c
	}
	return NewDestinations(f.Routes(), clients)
}

// Ping pings every destination (Client.Ping) and names each that fails.
func (d *Destinations) Ping(ctx context.Context) error {
	var errs []error
	for _, name := range d.routes.Destinations {
		if err := d.clients[name].Ping(ctx); err != nil {
			errs = append(errs, fmt.Errorf("destination %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// Check has the destination's SAP check a request's posting without
// posting it (Client.Check).
func (d *Destinations) Check(ctx context.Context, destination string, r Request, s Send) (CheckResult, error) {
	c, err := d.client(destination, "check")
	if err != nil {
		return CheckResult{}, err
	}
	return c.Check(ctx, r, s)
}

// HoldsDocument reports whether SAP holds a document under the job's
// reference (reversed or not), in the destination its first call went to or,
// for a job never sent, the one the routes choose: the look-up that must
// come before a job never sent is cancelled (ledger.Cancel). It implements
// ledger.SAPLookup.
func (d *Destinations) HoldsDocument(ctx context.Context, job tasks.Job) (bool, error) {
	p, err := job.Posting()
	if err != nil {
		return false, err
	}
	destination, reference := job.Destination, job.Reference
	if destination == "" || reference == "" {
		if destination, err = d.Route(p); err != nil {
			return false, err
		}
		reference = tasks.IdentityOf(&job, destination).Reference()
	}
	r, err := NewRequest(p)
	if err != nil {
		return false, err
	}
	m, err := d.Find(ctx, destination, r, reference)
	return m.Found, err
}
