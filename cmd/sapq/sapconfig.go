package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/sapq/sapq/sap"
	"github.com/sapq/sapq/tasks"
)

// routeFlags say which SAP destinations there are and how postings are
// routed among them: what the MCP front (which refuses what cannot be
// routed) and the worker (which routes) must agree on. Either one
// destination, --sap-destination, or a destinations file.
type routeFlags struct {
	destination, file string
	parsed            *sap.DestinationsFile // once checked, when file is set
}

func (r *routeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&r.destination, "sap-destination", env("SAP_DESTINATION", tasks.DefaultDestination), "name of the one SAP system; part of every posting's identity in SAP, so never rename it (env SAPQ_SAP_DESTINATION)")
	fs.StringVar(&r.file, "sap-destinations-file", env("SAP_DESTINATIONS_FILE", ""), "JSON file of several SAP systems (name, URL, sap-client, language, company codes, CA bundle, Basic or OAuth with secrets from environment variables or files), in place of the single-system --sap-* settings; give the worker and the MCP front the same file (env SAPQ_SAP_DESTINATIONS_FILE)")
}

func (r *routeFlags) checks() []func() error {
	return []func() error{func() error {
		if r.file == "" {
			if !tasks.ValidDestinationName(r.destination) {
				return fmt.Errorf("--sap-destination (SAPQ_SAP_DESTINATION) %q: 1-%d letters, digits, '.', '_' or '-', starting with a letter or digit", r.destination, tasks.MaxDestinationName)
			}
			return nil
		}
		f, err := sap.LoadDestinationsFile(r.file)
		if err != nil {
			return fmt.Errorf("--sap-destinations-file (SAPQ_SAP_DESTINATIONS_FILE): %w", err)
		}
		r.parsed = f
		return nil
	}}
}

// routes are the configured routes.
func (r *routeFlags) routes() tasks.Routes {
	if r.parsed != nil {
		return r.parsed.Routes()
	}
	return tasks.SingleRoute(r.destination)
}

// sapFlags configure the worker's SAP clients: the one system's
// connection, or the destinations file.
type sapFlags struct {
	routeFlags
	fs                                   *flag.FlagSet
	url, client, user, language          string
	caFile, oauthTokenURL, oauthClientID string
	oauthScopes                          string
	timeout                              time.Duration
}

// singleSettings are the settings of the one system, which a destinations
// file replaces: flag name and variable (without SAPQ_).
var singleSettings = [][2]string{
	{"sap-url", "SAP_URL"}, {"sap-client", "SAP_CLIENT"}, {"sap-user", "SAP_USER"}, {"sap-language", "SAP_LANGUAGE"},
	{"sap-destination", "SAP_DESTINATION"}, {"sap-ca-file", "SAP_CA_FILE"},
	{"sap-oauth-token-url", "SAP_OAUTH_TOKEN_URL"}, {"sap-oauth-client-id", "SAP_OAUTH_CLIENT_ID"}, {"sap-oauth-scopes", "SAP_OAUTH_SCOPES"},
	{"", "SAP_PASSWORD"}, {"", "SAP_PASSWORD_FILE"}, {"", "SAP_OAUTH_CLIENT_SECRET"}, {"", "SAP_OAUTH_CLIENT_SECRET_FILE"},
}

func (s *sapFlags) register(fs *flag.FlagSet, e *envDefaults) {
	s.fs = fs
	s.routeFlags.register(fs)
	fs.StringVar(&s.url, "sap-url", env("SAP_URL", "http://127.0.0.1:8081"), "SAP base URL (env SAPQ_SAP_URL)")
	fs.StringVar(&s.client, "sap-client", env("SAP_CLIENT", "100"), "SAP client, sent as sap-client (env SAPQ_SAP_CLIENT)")
	fs.StringVar(&s.user, "sap-user", env("SAP_USER", "SAPQ_COMM"), "SAP communication user (env SAPQ_SAP_USER); the password comes from SAPQ_SAP_PASSWORD or SAPQ_SAP_PASSWORD_FILE")
	fs.StringVar(&s.language, "sap-language", env("SAP_LANGUAGE", "EN"), "logon language, sent as sap-language: SAP's message texts come in it, and texts in English are what lock messages are recognised by (env SAPQ_SAP_LANGUAGE)")
	fs.StringVar(&s.caFile, "sap-ca-file", env("SAP_CA_FILE", ""), "PEM file of certificate authorities trusted for SAP's TLS certificate (and the OAuth token endpoint's) besides the system's (env SAPQ_SAP_CA_FILE)")
	fs.StringVar(&s.oauthTokenURL, "sap-oauth-token-url", env("SAP_OAUTH_TOKEN_URL", ""), "OAuth 2.0 client credentials instead of Basic: the token endpoint; the secret comes from SAPQ_SAP_OAUTH_CLIENT_SECRET or SAPQ_SAP_OAUTH_CLIENT_SECRET_FILE (env SAPQ_SAP_OAUTH_TOKEN_URL)")
	fs.StringVar(&s.oauthClientID, "sap-oauth-client-id", env("SAP_OAUTH_CLIENT_ID", ""), "OAuth client ID (env SAPQ_SAP_OAUTH_CLIENT_ID)")
	fs.StringVar(&s.oauthScopes, "sap-oauth-scopes", env("SAP_OAUTH_SCOPES", ""), "comma-separated OAuth scopes to ask for, if the token endpoint wants any (env SAPQ_SAP_OAUTH_SCOPES)")
	fs.DurationVar(&s.timeout, "sap-timeout", e.duration("SAP_TIMEOUT", 30*time.Second), "timeout of each SAP call, for every destination (env SAPQ_SAP_TIMEOUT)")
}

func (s *sapFlags) checks() []func() error {
	return append(s.routeFlags.checks(),
		positive("sap-timeout", "SAP_TIMEOUT", &s.timeout),
		func() error {
			if s.file == "" {
				return nil
			}
			given := map[string]bool{}
			s.fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
			var both []string
			for _, setting := range singleSettings {
				_, inEnv := os.LookupEnv("SAPQ_" + setting[1])
				switch {
				case setting[0] != "" && given[setting[0]]:
					both = append(both, "--"+setting[0])
				case inEnv:
					both = append(both, "SAPQ_"+setting[1])
				}
			}
			if len(both) > 0 {
				return fmt.Errorf("--sap-destinations-file (SAPQ_SAP_DESTINATIONS_FILE) replaces the one system's settings; remove %s (the file says it per destination)", strings.Join(both, ", "))
			}
			return nil
		},
		func() error {
			if s.file == "" && (s.oauthTokenURL == "") != (s.oauthClientID == "") {
				return errors.New("OAuth needs both --sap-oauth-token-url (SAPQ_SAP_OAUTH_TOKEN_URL) and --sap-oauth-client-id (SAPQ_SAP_OAUTH_CLIENT_ID)")
			}
			return nil
		},
		func() error {
			if s.file != "" || s.caFile == "" {
				return nil
			}
			if _, err := sap.LoadCAFile(s.caFile); err != nil {
				return fmt.Errorf("--sap-ca-file (SAPQ_SAP_CA_FILE): %w", err)
			}
			return nil
		},
	)
}

// destinations opens a client for every SAP destination, each keeping
// open up to conns connections (0: the client's default).
func (s *sapFlags) destinations(log *slog.Logger, conns int) (*sap.Destinations, error) {
	base := sap.Config{Timeout: s.timeout, Logger: log, MaxIdleConns: conns}
	if s.parsed != nil {
		return s.parsed.OpenDestinations(base)
	}
	cfg, err := s.singleConfig(base)
	if err != nil {
		return nil, err
	}
	c, err := sap.New(cfg)
	if err != nil {
		return nil, err
	}
	return sap.SingleDestination(s.destination, c)
}

// singleConfig is the one system's client configuration, secrets read.
func (s *sapFlags) singleConfig(cfg sap.Config) (sap.Config, error) {
	cfg.BaseURL, cfg.Client, cfg.Language, cfg.User = s.url, s.client, s.language, s.user
	pw, err := secret("SAP_PASSWORD")
	if err != nil {
		return cfg, err
	}
	if s.oauthTokenURL != "" {
		if pw != "" {
			return cfg, errors.New("SAPQ_SAP_PASSWORD and OAuth (--sap-oauth-token-url) exclude each other")
		}
		cs, err := secret("SAP_OAUTH_CLIENT_SECRET")
		if err != nil {
			return cfg, err
		}
		if cs == "" {
			return cfg, errors.New("OAuth needs the client secret in SAPQ_SAP_OAUTH_CLIENT_SECRET or SAPQ_SAP_OAUTH_CLIENT_SECRET_FILE")
		}
		cfg.OAuth = &sap.OAuth{TokenURL: s.oauthTokenURL, ClientID: s.oauthClientID, ClientSecret: cs}
		for _, sc := range strings.Split(s.oauthScopes, ",") {
			if sc = strings.TrimSpace(sc); sc != "" {
				cfg.OAuth.Scopes = append(cfg.OAuth.Scopes, sc)
			}
		}
	} else {
		cfg.Password = pw
	}
	if s.caFile != "" {
		if cfg.RootCAs, err = sap.LoadCAFile(s.caFile); err != nil {
			return cfg, fmt.Errorf("--sap-ca-file (SAPQ_SAP_CA_FILE): %w", err)
		}
	}
	return cfg, nil
}

// addresses says where each destination is and who logs on, without
// secrets: enough to describe a call without making it.
func (s *sapFlags) addresses() func(destination string) (sap.Config, bool) {
	if s.parsed != nil {
		cfgs := s.parsed.Addresses()
		return func(d string) (sap.Config, bool) { c, ok := cfgs[d]; return c, ok }
	}
	cfg := sap.Config{BaseURL: s.url, Client: s.client, Language: s.language, User: s.user}
	return func(d string) (sap.Config, bool) { return cfg, d == s.destination }
}
