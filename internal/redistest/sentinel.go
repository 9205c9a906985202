package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// SentinelOptions configure StartSentinel.
type SentinelOptions struct {
	// MasterName is the name the sentinels know the master by; "sapq" by
	// default.
	MasterName string
}

// sentinels is how many sentinels watch the master; a quorum of 2 of them
// can declare it down.
const (
	sentinels      = 3
	sentinelQuorum = 2
)

// Sentinel is a master and a replica watched by 3 sentinels (quorum 2) on
// loopback ports, with timings short enough for a failover to finish in
// about 3 s.
//
// Its methods belong to the test that started it: they fail that test
// (t.Fatal) on error and must be called from its goroutine.
type Sentinel struct {
	t         testing.TB
	name      string
	dir       string
	servers   []*process // the master and the replica, in their first roles
	sentinels []*process
}

// StartSentinel starts the servers and the sentinels and waits until every
// sentinel knows the master, its replica and the other sentinels. All are
// stopped when the test ends.
func StartSentinel(t testing.TB, opts SentinelOptions) *Sentinel {
	t.Helper()
	if opts.MasterName == "" {
		opts.MasterName = "sapq"
	}
	if strings.ContainsAny(opts.MasterName, " \t\r\n\"'\\") {
		t.Fatalf("redistest: MasterName %q: no spaces or quotes", opts.MasterName)
	}
	bin, err := lookPath7("redis-server")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "sapq-redistest-sentinel-")
	if err != nil {
		t.Fatal(err)
	}
	s := &Sentinel{t: t, name: opts.MasterName, dir: dir}
	t.Cleanup(s.Stop)
	if err := s.start(bin); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *Sentinel) start(bin string) error {
	for i := range 2 {
		nodeDir := filepath.Join(s.dir, "server"+strconv.Itoa(i))
		if err := os.Mkdir(nodeDir, 0o755); err != nil {
			return err
		}
		proc, err := launch(bin, func(port int) ([]string, error) {
			args := []string{
				"--bind", "127.0.0.1", "--port", strconv.Itoa(port),
				"--dir", nodeDir, "--save", "", "--appendonly", "no",
				"--maxmemory-policy", "noeviction",
				// A replica syncs at once instead of after 5 s.
				"--repl-diskless-sync-delay", "0",
				"--daemonize", "no", "--loglevel", "notice"}
			if i == 1 {
				host, port, _ := net.SplitHostPort(s.servers[0].addr)
				args = append(args, "--replicaof", host, port)
			}
			return args, nil
		})
		if err != nil {
			return err
		}
		s.servers = append(s.servers, proc)
	}
	master, replica := s.servers[0], s.servers[1]
	err := poll(readyLimit, "the replica to sync", func(ctx context.Context) error {
		return replicaLinked(ctx, replica.addr, master.addr)
	})
	if err != nil {
		return fmt.Errorf("redistest: %w", err)
	}
	masterHost, masterPort, _ := net.SplitHostPort(master.addr)
	for i := range sentinels {
		sentinelDir := filepath.Join(s.dir, "sentinel"+strconv.Itoa(i))
		if err := os.Mkdir(sentinelDir, 0o755); err != nil {
			return err
		}
		// Sentinel needs a config file, which it rewrites with what it
		// learns; the monitor line can only be given there. A master that
		// stops answering for 2 s is failed over by the sentinels; less
		// could fail it over because a busy machine delayed it.
		conf := filepath.Join(sentinelDir, "sentinel.conf")
		proc, err := launch(bin, func(port int) ([]string, error) {
			text := fmt.Sprintf(`port %d
bind 127.0.0.1
dir %s
sentinel monitor %s %s %s %d
sentinel down-after-milliseconds %[3]s 2000
sentinel failover-timeout %[3]s 5000
sentinel parallel-syncs %[3]s 1
`, port, sentinelDir, s.name, masterHost, masterPort, sentinelQuorum)
			if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
				return nil, err
			}
			return []string{conf, "--sentinel", "--daemonize", "no", "--loglevel", "notice"}, nil
		})
		if err != nil {
			return err
		}
		s.sentinels = append(s.sentinels, proc)
		// Sentinel's periods are fixed in its code; SENTINEL DEBUG (made
		// for Redis's own tests) shortens them: INFO to the instances every
		// second instead of every 10 s, hello messages every 0.5 s instead
		// of 2 s (a sentinel waits 4 of those before turning a master it
		// no longer wants into a replica), and a TILT, entered when the
		// timer is late by 2 s on a busy machine, lasts 1 s instead of 30.
		client := redis.NewClient(&redis.Options{Addr: proc.addr})
		err = client.Do(context.Background(), "SENTINEL", "DEBUG",
			"info-period", 1000, "publish-period", 500, "tilt-period", 1000).Err()
		client.Close()
		if err != nil {
			return fmt.Errorf("redistest: SENTINEL DEBUG on %s: %w", proc.addr, err)
		}
	}
	err = poll(20*time.Second, "the sentinels to know the master, its replica and each other", func(ctx context.Context) error {
		return s.settled(ctx, master.addr, replica.addr)
	})
	if err != nil {
		return fmt.Errorf("redistest: %w", err)
	}
	return nil
}

// settled checks that every sentinel sees master as a healthy master with
// replica as its healthy replica, knows the other sentinels, and that the
// servers are in these roles.
func (s *Sentinel) settled(ctx context.Context, master, replica string) error {
	for _, group := range [][]*process{s.servers, s.sentinels} {
		for _, p := range group {
			if p.hasExited() {
				return permanent(p.exitError())
			}
		}
	}
	for _, p := range s.sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: p.addr, MaxRetries: -1})
		err := s.sentinelSettled(ctx, sc, master, replica)
		sc.Close()
		if err != nil {
			return fmt.Errorf("sentinel %s: %w", p.addr, err)
		}
	}
	client := redis.NewClient(&redis.Options{Addr: master, MaxRetries: -1})
	info, err := client.Info(ctx, "replication").Result()
	client.Close()
	if err != nil {
		return err
	}
	if role := infoField(info, "role"); role != "master" {
		return fmt.Errorf("%s has role %s", master, role)
	}
	return replicaLinked(ctx, replica, master)
}

func (s *Sentinel) sentinelSettled(ctx context.Context, sc *redis.SentinelClient, master, replica string) error {
	addr, err := sc.GetMasterAddrByName(ctx, s.name).Result()
	if err != nil {
		return err
	}
	if len(addr) != 2 || net.JoinHostPort(addr[0], addr[1]) != master {
		return fmt.Errorf("master is %v, want %s", addr, master)
	}
	m, err := sc.Master(ctx, s.name).Result()
	if err != nil {
		return err
	}
	if m["flags"] != "master" {
		return fmt.Errorf("master flagged %s", m["flags"])
	}
	if m["num-other-sentinels"] != strconv.Itoa(sentinels-1) {
		return fmt.Errorf("knows %s other sentinels", m["num-other-sentinels"])
	}
	rs, err := sc.Replicas(ctx, s.name).Result()
	if err != nil {
		return err
	}
	for _, r := range rs {
		if net.JoinHostPort(r["ip"], r["port"]) == replica {
			if r["flags"] != "slave" || r["master-link-status"] != "ok" {
				return fmt.Errorf("replica %s flagged %s, master link %s", replica, r["flags"], r["master-link-status"])
			}
			return nil
		}
	}
	return fmt.Errorf("does not know replica %s", replica)
}

// replicaLinked checks that the server at replica replicates from master.
func replicaLinked(ctx context.Context, replica, master string) error {
	client := redis.NewClient(&redis.Options{Addr: replica, MaxRetries: -1})
	defer client.Close()
	info, err := client.Info(ctx, "replication").Result()
	if err != nil {
		return err
	}
	of := net.JoinHostPort(infoField(info, "master_host"), infoField(info, "master_port"))
	if infoField(info, "role") != "slave" || of != master || infoField(info, "master_link_status") != "up" {
		return fmt.Errorf("%s is not a linked replica of %s (role %s of %s, link %s)", replica, master,
			infoField(info, "role"), of, infoField(info, "master_link_status"))
	}
	return nil
}

// MasterName is the name the sentinels know the master by.
func (s *Sentinel) MasterName() string { return s.name }

// SentinelAddrs are the sentinels' addresses.
func (s *Sentinel) SentinelAddrs() []string {
	addrs := make([]string, len(s.sentinels))
	for i, p := range s.sentinels {
		addrs[i] = p.addr
	}
	return addrs
}

// FailoverOptions are go-redis options for a client of the master.
func (s *Sentinel) FailoverOptions() *redis.FailoverOptions {
	return &redis.FailoverOptions{MasterName: s.name, SentinelAddrs: s.SentinelAddrs()}
}

// Client returns a client of whichever server is master
// (redis.NewFailoverClient), closed when the test ends.
func (s *Sentinel) Client() *redis.Client {
	c := redis.NewFailoverClient(s.FailoverOptions())
	s.t.Cleanup(func() { c.Close() })
	return c
}

// Master is the current master's address, as the first sentinel reports it.
func (s *Sentinel) Master() string {
	s.t.Helper()
	m, err := s.master(context.Background())
	if err != nil {
		s.t.Fatalf("redistest: %v", err)
	}
	return m
}

func (s *Sentinel) master(ctx context.Context) (string, error) {
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.sentinels[0].addr})
	defer sc.Close()
	addr, err := sc.GetMasterAddrByName(ctx, s.name).Result()
	if err != nil {
		return "", fmt.Errorf("SENTINEL GET-MASTER-ADDR-BY-NAME %s on %s: %w", s.name, s.sentinels[0].addr, err)
	}
	if len(addr) != 2 {
		return "", fmt.Errorf("SENTINEL GET-MASTER-ADDR-BY-NAME %s: %v", s.name, addr)
	}
	return net.JoinHostPort(addr[0], addr[1]), nil
}

// Failover makes the replica master with SENTINEL FAILOVER and returns its
// address once every sentinel reports it as master and the old master
// replicates from it. Like a failover Sentinel starts by itself, it does
// not wait for the replica to have the master's last writes: writes the
// replica had not received are lost (to keep them, WAIT for the replica on
// the connection that wrote them first).
func (s *Sentinel) Failover() string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	old, err := s.master(ctx)
	if err != nil {
		s.t.Fatalf("redistest: Failover: %v", err)
	}
	next := s.servers[0].addr
	if next == old {
		next = s.servers[1].addr
	}
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.sentinels[0].addr})
	err = sc.Failover(ctx, s.name).Err()
	sc.Close()
	if err != nil {
		s.t.Fatalf("redistest: SENTINEL FAILOVER %s: %v", s.name, err)
	}
	err = poll(20*time.Second, "the failover from "+old+" to "+next, func(ctx context.Context) error {
		return s.settled(ctx, next, old)
	})
	if err != nil {
		s.t.Fatalf("redistest: %v", err)
	}
	return next
}

// Stop kills the sentinels and the servers and removes their files.
func (s *Sentinel) Stop() {
	for _, p := range s.sentinels {
		p.kill()
	}
	for _, p := range s.servers {
		p.kill()
	}
	s.sentinels, s.servers = nil, nil
	os.RemoveAll(s.dir)
}
