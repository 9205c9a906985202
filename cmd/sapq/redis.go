package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// redisURLForms is what --redis-url accepts, for error messages and help.
const redisURLForms = "redis://[user:pass@]host:6379/0, rediss://… (TLS), " +
	"redis-sentinel://[user:pass@]host1:26379,host2:26379/<master-name>[?db=N], " +
	"or redis-cluster://[user:pass@]host1:6379,host2:6379 (rediss-sentinel:// and rediss-cluster:// for TLS)"

// redisTarget is the Redis a process works on: one server, a master
// managed by Sentinel, or a Redis Cluster. Exactly one field is set.
type redisTarget struct {
	single   *redis.Options
	failover *redis.FailoverOptions
	cluster  *redis.ClusterOptions
}

// parseRedisURL parses one of the forms in redisURLForms. Its errors never
// repeat a password given in the URL.
func parseRedisURL(raw string) (redisTarget, error) {
	scheme, _, found := strings.Cut(raw, "://")
	if !found {
		return redisTarget{}, fmt.Errorf("%q is not a URL; use %s", redactURL(raw), redisURLForms)
	}
	var t redisTarget
	var err error
	switch scheme {
	case "redis", "rediss", "unix":
		var opt *redis.Options
		if opt, err = redis.ParseURL(raw); err == nil {
			t.single = opt
		}
	case "redis-sentinel", "rediss-sentinel":
		t.failover, err = parseSentinelURL(raw)
	case "redis-cluster", "rediss-cluster":
		t.cluster, err = parseClusterURL(raw)
	default:
		return redisTarget{}, fmt.Errorf("%q: unknown scheme %q; use %s", redactURL(raw), scheme, redisURLForms)
	}
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL, password included
		}
		return redisTarget{}, fmt.Errorf("%q: %v", redactURL(raw), err)
	}
	return t, nil
}

// multiHostURL is a URL whose authority lists several host:port addresses,
// which net/url does not parse (it takes them for one host, and refuses
// bracketed IPv6 addresses in such a list).
type multiHostURL struct {
	user  *url.Userinfo
	addrs []string
	path  string
	query url.Values
	tls   bool
}

func parseMultiHostURL(raw string) (multiHostURL, error) {
	scheme, rest, _ := strings.Cut(raw, "://")
	authority, tail := rest, ""
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority, tail = rest[:i], rest[i:]
	}
	var userinfo string
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		userinfo, authority = authority[:i+1], authority[i+1:]
	}
	// The rest is a URL net/url can parse once the hosts are out of it.
	u, err := url.Parse("x://" + userinfo + "hosts" + tail)
	if err != nil {
		return multiHostURL{}, err
	}
	if u.Fragment != "" {
		return multiHostURL{}, errors.New("a Redis URL has no #fragment")
	}
	m := multiHostURL{user: u.User, path: strings.TrimPrefix(u.Path, "/"), query: u.Query(), tls: strings.HasPrefix(scheme, "rediss")}
	if authority == "" {
		return multiHostURL{}, errors.New("no host:port addresses")
	}
	for _, addr := range strings.Split(authority, ",") {
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host == "" {
			return multiHostURL{}, fmt.Errorf("address %q is not host:port", addr)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return multiHostURL{}, fmt.Errorf("address %q has no valid port", addr)
		}
		m.addrs = append(m.addrs, addr)
	}
	return m, nil
}

// onlyParams refuses query parameters other than the allowed ones: a
// misspelt option would otherwise be ignored.
func (m multiHostURL) onlyParams(allowed ...string) error {
	for name := range m.query {
		found := false
		for _, a := range allowed {
			found = found || name == a
		}
		if !found {
			if len(allowed) == 0 {
				return fmt.Errorf("unknown parameter %q (this form takes none)", name)
			}
			return fmt.Errorf("unknown parameter %q (only %s)", name, strings.Join(allowed, ", "))
		}
	}
	return nil
}

func (m multiHostURL) tlsConfig() *tls.Config {
	if !m.tls {
		return nil
	}
	// The servers' names differ; the certificate is checked against the
	// name of each address dialed (crypto/tls fills ServerName from it).
	return &tls.Config{MinVersion: tls.VersionTLS12}
}

// parseSentinelURL parses redis-sentinel://[user:pass@]host1:port,…/<master>[?db=N].
// The user and password are those of the master and its replicas; the
// sentinels' own password, where they require one, comes from
// SAPQ_REDIS_SENTINEL_PASSWORD.
func parseSentinelURL(raw string) (*redis.FailoverOptions, error) {
	m, err := parseMultiHostURL(raw)
	if err != nil {
		return nil, err
	}
	if err := m.onlyParams("db"); err != nil {
		return nil, err
	}
	if m.path == "" || strings.Contains(m.path, "/") {
		return nil, errors.New("the path must be the master's name as the sentinels know it, e.g. redis-sentinel://host1:26379,host2:26379/mymaster")
	}
	opt := &redis.FailoverOptions{MasterName: m.path, SentinelAddrs: m.addrs, TLSConfig: m.tlsConfig()}
	if v := m.query.Get("db"); v != "" {
		if opt.DB, err = strconv.Atoi(v); err != nil || opt.DB < 0 {
			return nil, fmt.Errorf("db=%q is not a database number", v)
		}
	}
	if m.user != nil {
		opt.Username = m.user.Username()
		opt.Password, _ = m.user.Password()
	}
	return opt, nil
}

// parseClusterURL parses redis-cluster://[user:pass@]host1:port,host2:port:
// the nodes to learn the cluster's layout from (any of them will do; more
// than one survives one being down at start).
func parseClusterURL(raw string) (*redis.ClusterOptions, error) {
	m, err := parseMultiHostURL(raw)
	if err != nil {
		return nil, err
	}
	if err := m.onlyParams(); err != nil {
		return nil, err
	}
	if m.path != "" {
		return nil, fmt.Errorf("path %q: a Redis Cluster has only database 0, so the URL has no path", "/"+m.path)
	}
	opt := &redis.ClusterOptions{Addrs: m.addrs, TLSConfig: m.tlsConfig()}
	if m.user != nil {
		opt.Username = m.user.Username()
		opt.Password, _ = m.user.Password()
	}
	return opt, nil
}

// redactURL replaces the password in a URL-like string, however malformed
// the rest of it is.
func redactURL(raw string) string {
	scheme, rest, found := strings.Cut(raw, "://")
	if !found {
		return raw
	}
	end := len(rest)
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		end = i
	}
	at := strings.LastIndex(rest[:end], "@")
	if at < 0 {
		return raw
	}
	user, _, hasPassword := strings.Cut(rest[:at], ":")
	if !hasPassword {
		return raw
	}
	return scheme + "://" + user + ":xxxxx" + rest[at:]
}

// setPasswords applies the passwords from the environment, which win over
// one in the URL.
func (t redisTarget) setPasswords(password, sentinelPassword string) {
	switch {
	case t.single != nil && password != "":
		t.single.Password = password
	case t.failover != nil:
		if password != "" {
			t.failover.Password = password
		}
		t.failover.SentinelPassword = sentinelPassword
	case t.cluster != nil && password != "":
		t.cluster.Password = password
	}
}

// client returns a client of the target: every part of sapq takes a
// redis.UniversalClient.
func (t redisTarget) client() redis.UniversalClient {
	switch {
	case t.failover != nil:
		return redis.NewFailoverClient(t.failover)
	case t.cluster != nil:
		return redis.NewClusterClient(t.cluster)
	default:
		return redis.NewClient(t.single)
	}
}

// connOpt is the target for code that opens its own connections through
// asynq (the Asynq UI).
func (t redisTarget) connOpt() asynq.RedisConnOpt {
	switch {
	case t.failover != nil:
		o := t.failover
		return asynq.RedisFailoverClientOpt{
			MasterName: o.MasterName, SentinelAddrs: o.SentinelAddrs,
			SentinelUsername: o.SentinelUsername, SentinelPassword: o.SentinelPassword,
			Username: o.Username, Password: o.Password, DB: o.DB,
			DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
			PoolSize: o.PoolSize, TLSConfig: o.TLSConfig,
		}
	case t.cluster != nil:
		o := t.cluster
		return asynq.RedisClusterClientOpt{
			Addrs: o.Addrs, MaxRedirects: o.MaxRedirects, Username: o.Username, Password: o.Password,
			DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
			TLSConfig: o.TLSConfig,
		}
	default:
		o := t.single
		return asynq.RedisClientOpt{
			Network: o.Network, Addr: o.Addr, Username: o.Username, Password: o.Password, DB: o.DB,
			DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
			PoolSize: o.PoolSize, TLSConfig: o.TLSConfig,
		}
	}
}

// String names the target without credentials, for logs and for operators
// who need to know which Redis a command read.
func (t redisTarget) String() string {
	switch {
	case t.failover != nil:
		return fmt.Sprintf("master %q of sentinels %s, db %d", t.failover.MasterName, strings.Join(t.failover.SentinelAddrs, ","), t.failover.DB)
	case t.cluster != nil:
		return "cluster " + strings.Join(t.cluster.Addrs, ",")
	case t.single != nil:
		return fmt.Sprintf("%s db %d", t.single.Addr, t.single.DB)
	}
	return "no Redis"
}
