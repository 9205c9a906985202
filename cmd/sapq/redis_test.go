package main

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/hibiken/asynq"
)

func TestParseRedisURL(t *testing.T) {
	t.Run("one server", func(t *testing.T) {
		tg, err := parseRedisURL("redis://u:pw@10.0.0.1:6380/3")
		if err != nil {
			t.Fatal(err)
		}
		if o := tg.single; o == nil || o.Addr != "10.0.0.1:6380" || o.DB != 3 || o.Username != "u" || o.Password != "pw" || o.TLSConfig != nil {
			t.Fatalf("got %+v", tg)
		}
		if c, ok := tg.connOpt().(asynq.RedisClientOpt); !ok || c.Addr != "10.0.0.1:6380" || c.DB != 3 || c.Password != "pw" {
			t.Fatalf("asynq options %+v", tg.connOpt())
		}
		tls, err := parseRedisURL("rediss://redis.example.com:6379/0")
		if err != nil || tls.single.TLSConfig == nil {
			t.Fatalf("rediss: %+v, %v", tls, err)
		}
	})
	t.Run("sentinel", func(t *testing.T) {
		tg, err := parseRedisURL("redis-sentinel://u:p%40ss@s1:26379,[::1]:26380,s3:26381/mymaster?db=2")
		if err != nil {
			t.Fatal(err)
		}
		o := tg.failover
		if o == nil || o.MasterName != "mymaster" || o.DB != 2 || o.Username != "u" || o.Password != "p@ss" || o.TLSConfig != nil ||
			!reflect.DeepEqual(o.SentinelAddrs, []string{"s1:26379", "[::1]:26380", "s3:26381"}) {
			t.Fatalf("got %+v", o)
		}
		c, ok := tg.connOpt().(asynq.RedisFailoverClientOpt)
		if !ok || c.MasterName != "mymaster" || c.DB != 2 || c.Password != "p@ss" || len(c.SentinelAddrs) != 3 {
			t.Fatalf("asynq options %+v", tg.connOpt())
		}
		tg.setPasswords("from-env", "sentinels-own")
		if o.Password != "from-env" || o.SentinelPassword != "sentinels-own" {
			t.Fatalf("passwords from the environment: %q %q", o.Password, o.SentinelPassword)
		}
		tls, err := parseRedisURL("rediss-sentinel://s1:26379/m")
		if err != nil || tls.failover.TLSConfig == nil {
			t.Fatalf("rediss-sentinel: %+v, %v", tls, err)
		}
	})
	t.Run("cluster", func(t *testing.T) {
		tg, err := parseRedisURL("redis-cluster://:pw@n1:6379,n2:6379,n3:6379")
		if err != nil {
			t.Fatal(err)
		}
		if o := tg.cluster; o == nil || o.Password != "pw" || !reflect.DeepEqual(o.Addrs, []string{"n1:6379", "n2:6379", "n3:6379"}) {
			t.Fatalf("got %+v", tg)
		}
		if c, ok := tg.connOpt().(asynq.RedisClusterClientOpt); !ok || len(c.Addrs) != 3 || c.Password != "pw" {
			t.Fatalf("asynq options %+v", tg.connOpt())
		}
		if s := tg.String(); !strings.Contains(s, "n1:6379") || strings.Contains(s, "pw") {
			t.Fatalf("String() = %q", s)
		}
	})
	bad := []struct{ url, want string }{
		{"redis//nowhere", "not a URL"},
		{"memcached://h:1", "unknown scheme"},
		{"redis-sentinel://s1:26379,s2:26379", "master's name"},
		{"redis-sentinel://s1:26379/a/b", "master's name"},
		{"redis-sentinel://s1:26379/m?db=x", `db="x"`},
		{"redis-sentinel://s1:26379/m?master=m", `unknown parameter "master"`},
		{"redis-sentinel://s1/m", `"s1" is not host:port`},
		{"redis-sentinel:///m", "no host:port"},
		{"redis-cluster://n1:6379,n2:x", `"n2:x" has no valid port`},
		{"redis-cluster://n1:6379/1", "only database 0"},
		{"redis-cluster://n1:6379?read_only=true", "takes none"},
		{"redis-cluster://n1:6379#frag", "fragment"},
	}
	for _, b := range bad {
		if _, err := parseRedisURL(b.url); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("parseRedisURL(%q) = %v, want an error saying %s", b.url, err, b.want)
		}
	}
}

// A URL that does not parse is refused without repeating its password:
// errors end up in logs.
func TestRedisURLErrorsHideThePassword(t *testing.T) {
	for _, u := range []string{
		"redis://user:s3cret-pw@host:bad/0",
		"redis-sentinel://user:s3cret-pw@s1:26379",
		"redis-cluster://:s3cret-pw@n1:6379/4",
		"ftp://user:s3cret-pw@host/",
	} {
		_, err := parseRedisURL(u)
		if err == nil {
			t.Fatalf("%s parsed", u)
		}
		if strings.Contains(err.Error(), "s3cret-pw") {
			t.Errorf("the error repeats the password: %v", err)
		}
	}
}

// Every process refuses a Redis URL that does not parse, naming the
// variable and the flag.
func TestBadRedisURLRefusesToStart(t *testing.T) {
	t.Setenv("SAPQ_REDIS_URL", "redis-sentinel://127.0.0.1:1")
	t.Setenv("SAPQ_UI_TOKEN", "ui-token-0123456789")
	t.Setenv("SAPQ_MCP_TOKENS", "a:token-0123456789")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for name, run := range map[string]func() error{
		"worker": func() error { return runWorker(ctx, []string{"--metrics-addr", ""}, &strings.Builder{}) },
		"mcp":    func() error { return runMCP(ctx, []string{"--addr", "127.0.0.1:0"}, &strings.Builder{}) },
		"ui":     func() error { return runUI(ctx, []string{"--addr", "127.0.0.1:0"}, &strings.Builder{}) },
		"jobs":   func() error { return runJobs(ctx, []string{"list"}, &strings.Builder{}) },
		"dev": func() error {
			return runDev(ctx, []string{"--addr", "127.0.0.1:0", "--redis-url", "redis-cluster://n1:6379/2"}, &strings.Builder{})
		},
	} {
		err := run()
		if err == nil || !strings.Contains(err.Error(), "--redis-url") || (name != "dev" && !strings.Contains(err.Error(), "SAPQ_REDIS_URL")) {
			t.Errorf("%s: %v, want a refusal naming --redis-url and SAPQ_REDIS_URL", name, err)
		}
	}
}
