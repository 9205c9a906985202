package redistest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClusterOptions configure StartCluster and SharedCluster.
type ClusterOptions struct {
	// Replicas is the number of replicas of each of the 3 masters: 0 (the
	// default), or 1 for tests that fail a master over.
	Replicas int
}

// clusterMasters is how many masters a cluster has: the fewest Redis
// Cluster accepts, and enough for a majority to elect a new master.
const clusterMasters = 3

// Cluster is a running Redis Cluster on loopback ports: 3 masters sharing
// the 16384 slots, each with opts.Replicas replicas.
//
// Its methods belong to the test that got it: they fail that test (t.Fatal)
// on error and must be called from its goroutine.
type Cluster struct {
	t testing.TB
	*cluster
	shared bool
}

// cluster is the processes of a cluster, shared by the handles of
// successive tests (SharedCluster).
type cluster struct {
	opts  ClusterOptions
	dir   string
	nodes []*process
}

// StartCluster starts a Redis Cluster for one test; it is stopped when the
// test ends. Starting one takes about 2 s (redis-cli --cluster create waits
// a second for the nodes to meet).
func StartCluster(t testing.TB, opts ClusterOptions) *Cluster {
	t.Helper()
	c, err := startCluster(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.stop)
	return &Cluster{t: t, cluster: c}
}

func startCluster(opts ClusterOptions) (*cluster, error) {
	if opts.Replicas < 0 {
		return nil, fmt.Errorf("redistest: ClusterOptions.Replicas %d < 0", opts.Replicas)
	}
	server, err := lookPath7("redis-server")
	if err != nil {
		return nil, err
	}
	cli, err := lookPath7("redis-cli")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "sapq-redistest-cluster-")
	if err != nil {
		return nil, err
	}
	c := &cluster{opts: opts, dir: dir}
	if err := c.start(server, cli); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

func (c *cluster) start(server, cli string) error {
	for i := range clusterMasters * (1 + c.opts.Replicas) {
		nodeDir := filepath.Join(c.dir, "node"+strconv.Itoa(i))
		if err := os.Mkdir(nodeDir, 0o755); err != nil {
			return err
		}
		proc, err := launch(server, func(port int) ([]string, error) {
			// The bus port is set rather than left at port+10000, which
			// could be anything, in use included.
			bus, err := freePort()
			if err != nil {
				return nil, err
			}
			return []string{
				"--bind", "127.0.0.1", "--port", strconv.Itoa(port),
				"--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(bus),
				"--cluster-config-file", filepath.Join(nodeDir, "nodes.conf"),
				// Short enough for a test that kills a master to see it
				// failed over within seconds, long enough not to fail a
				// node over because a busy machine delayed it.
				"--cluster-node-timeout", "3000",
				// Any replica may take over, however long it lost contact.
				"--cluster-replica-validity-factor", "0",
				// A replica syncs at once instead of after 5 s.
				"--repl-diskless-sync-delay", "0",
				"--dir", nodeDir, "--save", "", "--appendonly", "no",
				"--maxmemory-policy", "noeviction",
				"--daemonize", "no", "--loglevel", "notice"}, nil
		})
		if err != nil {
			return err
		}
		c.nodes = append(c.nodes, proc)
	}
	args := []string{"--cluster", "create"}
	args = append(args, c.Addrs()...)
	args = append(args, "--cluster-replicas", strconv.Itoa(c.opts.Replicas), "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("redistest: redis-cli --cluster create: %v: %s", err, out)
	}
	return c.waitHealthy(20 * time.Second)
}

// stop kills the nodes and removes their directories.
func (c *cluster) stop() {
	for _, n := range c.nodes {
		n.kill()
	}
	c.nodes = nil
	os.RemoveAll(c.dir)
}

// Addrs are the addresses of all nodes, masters and replicas.
func (c *cluster) Addrs() []string {
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.addr
	}
	return addrs
}

// ClientOptions are go-redis options for the cluster.
func (c *Cluster) ClientOptions() *redis.ClusterOptions {
	return &redis.ClusterOptions{Addrs: c.Addrs()}
}

// Client returns a cluster client, closed when the test ends.
func (c *Cluster) Client() *redis.ClusterClient {
	cc := redis.NewClusterClient(c.ClientOptions())
	c.t.Cleanup(func() { cc.Close() })
	return cc
}

// Masters are the addresses of the current masters, in the order of the
// slots they serve (the first serves slot 0). A failover changes them.
func (c *Cluster) Masters() []string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	topo, err := c.topology(ctx, c.nodes[0].addr)
	if err != nil {
		c.t.Fatalf("redistest: %v", err)
	}
	return topo.masters()
}

// FlushAll empties every master and waits until its replicas have done
// the same, so that a cluster can serve one test after another.
func (c *Cluster) FlushAll() {
	c.t.Helper()
	if err := c.flushAll(); err != nil {
		c.t.Fatalf("redistest: %v", err)
	}
}

func (c *cluster) flushAll() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	topo, err := c.topology(ctx, c.nodes[0].addr)
	if err != nil {
		return err
	}
	for _, m := range topo.masters() {
		client := redis.NewClient(&redis.Options{Addr: m})
		// WAIT counts the replicas that have the writes of its own
		// connection, so both go through one.
		conn := client.Conn()
		err := conn.FlushAll(ctx).Err()
		var acked int64
		if err == nil && c.opts.Replicas > 0 {
			acked, err = conn.Wait(ctx, c.opts.Replicas, 5*time.Second).Result()
			if err == nil && acked < int64(c.opts.Replicas) {
				err = fmt.Errorf("%d of %d replicas acknowledged", acked, c.opts.Replicas)
			}
		}
		conn.Close()
		client.Close()
		if err != nil {
			return fmt.Errorf("FLUSHALL on master %s: %w", m, err)
		}
	}
	return nil
}

// Failover makes a replica of the master at masterAddr take over with
// CLUSTER FAILOVER, which waits for the replica to have all of the master's
// writes (nothing acknowledged is lost), and returns the replica's address.
// It returns once every node agrees that the replica is master and the old
// master its replica, and the cluster state is ok.
func (c *Cluster) Failover(masterAddr string) string {
	c.t.Helper()
	addr, err := c.failover(masterAddr)
	if err != nil {
		c.t.Fatalf("redistest: Failover %s: %v", masterAddr, err)
	}
	return addr
}

func (c *cluster) failover(masterAddr string) (string, error) {
	if c.opts.Replicas == 0 {
		return "", errors.New("the cluster has no replicas; start it with ClusterOptions{Replicas: 1}")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	topo, err := c.topology(ctx, masterAddr)
	if err != nil {
		return "", err
	}
	master, ok := topo[masterAddr]
	if !ok || !master.master {
		return "", fmt.Errorf("%s is not a master of the cluster (masters: %v)", masterAddr, topo.masters())
	}
	replicas := topo.replicasOf(masterAddr)
	if len(replicas) == 0 {
		return "", errors.New("the master has no replica")
	}
	replica := replicas[0]
	client := redis.NewClient(&redis.Options{Addr: replica})
	defer client.Close()
	if err := client.Do(ctx, "CLUSTER", "FAILOVER").Err(); err != nil {
		return "", fmt.Errorf("CLUSTER FAILOVER on %s: %w", replica, err)
	}
	err = poll(20*time.Second, "replica "+replica+" to take over from "+masterAddr, func(ctx context.Context) error {
		topo, err := c.healthy(ctx)
		if err != nil {
			return err
		}
		if !topo[replica].master || topo[masterAddr].masterAddr != replica {
			return errors.New("the replica is not master yet")
		}
		return nil
	})
	return replica, err
}

// Stop kills the nodes and removes their files. A shared cluster is stopped
// by Main instead.
func (c *Cluster) Stop() {
	c.t.Helper()
	if c.shared {
		c.t.Fatal("redistest: Stop on a shared cluster; redistest.Main stops it after the last test")
	}
	c.stop()
}

// waitHealthy waits until every node reports cluster_state:ok with all
// slots served, and all agree on which node is master or replica of which.
func (c *cluster) waitHealthy(limit time.Duration) error {
	err := poll(limit, "the cluster to be healthy", func(ctx context.Context) error {
		_, err := c.healthy(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("redistest: %w", err)
	}
	return nil
}

// healthy checks every node once and returns the topology they agree on.
func (c *cluster) healthy(ctx context.Context) (topology, error) {
	var agreed topology
	var agreedBy string
	for _, n := range c.nodes {
		if n.hasExited() {
			return nil, permanent(n.exitError())
		}
		client := redis.NewClient(&redis.Options{Addr: n.addr, MaxRetries: -1})
		err := c.nodeHealthy(ctx, client)
		client.Close()
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", n.addr, err)
		}
		topo, err := c.topology(ctx, n.addr)
		if err != nil {
			return nil, err
		}
		if err := topo.complete(c.opts.Replicas); err != nil {
			return nil, fmt.Errorf("node %s sees %w", n.addr, err)
		}
		if agreed == nil {
			agreed, agreedBy = topo, n.addr
		} else if topo.String() != agreed.String() {
			return nil, fmt.Errorf("nodes disagree: %s sees %s, %s sees %s", agreedBy, agreed, n.addr, topo)
		}
	}
	// Replication works: each replica is linked to the master all agree on.
	for addr, node := range agreed {
		if node.master {
			continue
		}
		client := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		info, err := client.Info(ctx, "replication").Result()
		client.Close()
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", addr, err)
		}
		linked := loopback(atoi(infoField(info, "master_port")))
		if infoField(info, "master_link_status") != "up" || linked != node.masterAddr {
			return nil, fmt.Errorf("replica %s: link to its master %s is not up", addr, node.masterAddr)
		}
	}
	return agreed, nil
}

func (c *cluster) nodeHealthy(ctx context.Context, client *redis.Client) error {
	info, err := client.ClusterInfo(ctx).Result()
	if err != nil {
		return err
	}
	for field, want := range map[string]string{
		"cluster_state":          "ok",
		"cluster_slots_assigned": "16384",
		"cluster_slots_ok":       "16384",
		"cluster_known_nodes":    strconv.Itoa(len(c.nodes)),
	} {
		if got := infoField(info, field); got != want {
			return fmt.Errorf("%s:%s, want %s", field, got, want)
		}
	}
	return nil
}

// topology is what one node says of the cluster (CLUSTER NODES), by address.
type topology map[string]clusterNode

type clusterNode struct {
	id         string
	master     bool
	masterAddr string // of a replica
	slots      int
	firstSlot  int
	flags      string
}

// topology asks the node at addr.
func (c *cluster) topology(ctx context.Context, addr string) (topology, error) {
	client := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer client.Close()
	out, err := client.ClusterNodes(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("CLUSTER NODES on %s: %w", addr, err)
	}
	topo, err := parseClusterNodes(out)
	if err != nil {
		return nil, fmt.Errorf("CLUSTER NODES on %s: %w", addr, err)
	}
	return topo, nil
}

// parseClusterNodes reads lines of
// <id> <ip:port@cport> <flags> <master-id> <ping> <pong> <epoch> <link> <slot>...
func parseClusterNodes(out string) (topology, error) {
	type line struct {
		addr string
		node clusterNode
		of   string // master ID
	}
	var lines []line
	byID := map[string]string{}
	for l := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) < 8 {
			return nil, fmt.Errorf("malformed line %q", l)
		}
		addr, _, _ := strings.Cut(f[1], "@")
		n := clusterNode{id: f[0], flags: f[2], firstSlot: -1}
		for flag := range strings.SplitSeq(f[2], ",") {
			n.master = n.master || flag == "master"
		}
		if f[7] != "connected" {
			n.flags += ",link-" + f[7]
		}
		for _, r := range f[8:] {
			if strings.HasPrefix(r, "[") { // a slot being migrated
				continue
			}
			lo, hi, isRange := strings.Cut(r, "-")
			if !isRange {
				hi = lo
			}
			a, b := atoi(lo), atoi(hi)
			n.slots += b - a + 1
			if n.firstSlot < 0 || a < n.firstSlot {
				n.firstSlot = a
			}
		}
		byID[n.id] = addr
		lines = append(lines, line{addr, n, f[3]})
	}
	topo := topology{}
	for _, l := range lines {
		if !l.node.master {
			l.node.masterAddr = byID[l.of]
		}
		topo[l.addr] = l.node
	}
	return topo, nil
}

// complete tells whether the topology is what a healthy cluster looks like.
func (t topology) complete(replicas int) error {
	slots, masters := 0, 0
	for addr, n := range t {
		for flag := range strings.SplitSeq(n.flags, ",") {
			switch flag {
			case "fail", "fail?", "handshake", "noaddr", "link-disconnected":
				return fmt.Errorf("node %s flagged %s", addr, n.flags)
			}
		}
		if n.master {
			if n.slots == 0 {
				return fmt.Errorf("master %s without slots", addr)
			}
			masters++
			slots += n.slots
			if got := len(t.replicasOf(addr)); got != replicas {
				return fmt.Errorf("master %s with %d replicas, want %d", addr, got, replicas)
			}
		} else if !t[n.masterAddr].master {
			return fmt.Errorf("replica %s of %q, which is no master", addr, n.masterAddr)
		}
	}
	if masters != clusterMasters || slots != 16384 {
		return fmt.Errorf("%d masters serving %d slots", masters, slots)
	}
	return nil
}

func (t topology) masters() []string {
	var ms []string
	for addr, n := range t {
		if n.master && n.slots > 0 {
			ms = append(ms, addr)
		}
	}
	slices.SortFunc(ms, func(a, b string) int { return t[a].firstSlot - t[b].firstSlot })
	return ms
}

func (t topology) replicasOf(master string) []string {
	var rs []string
	for addr, n := range t {
		if !n.master && n.masterAddr == master {
			rs = append(rs, addr)
		}
	}
	slices.Sort(rs)
	return rs
}

// String is the roles, comparable between nodes (each marks itself
// "myself", which is left out).
func (t topology) String() string {
	var parts []string
	for addr, n := range t {
		if n.master {
			parts = append(parts, fmt.Sprintf("%s master of %d slots from %d", addr, n.slots, n.firstSlot))
		} else {
			parts = append(parts, addr+" replica of "+n.masterAddr)
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, "; ")
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// shared holds the clusters SharedCluster started, by options, until Main
// stops them.
var shared struct {
	sync.Mutex
	underMain bool // Main runs the tests, and will stop the clusters
	clusters  map[ClusterOptions]*sharedCluster
}

type sharedCluster struct {
	c      *cluster
	err    error         // the start failed; every test asking gets it
	turn   chan struct{} // holds a token while no test uses the cluster
	holder string        // the test using it; guarded by shared
}

// SharedCluster returns the package's cluster with these options, started
// by the first test asking for it (about 2 s) and stopped by Main after the
// last test; the package's TestMain must run through Main. The test has the
// cluster to itself until it ends: other tests asking wait (the test itself
// and its subtests would wait forever, and fail instead). The cluster
// is handed over healthy and flushed (FlushAll); a failover by an earlier
// test leaves masters and replicas swapped.
func SharedCluster(t testing.TB, opts ClusterOptions) *Cluster {
	t.Helper()
	shared.Lock()
	if !shared.underMain {
		shared.Unlock()
		t.Fatal("redistest: SharedCluster needs the package's TestMain to run the tests through redistest.Main, which stops the cluster")
	}
	sc := shared.clusters[opts]
	if sc == nil {
		// Started under the lock: a test asking meanwhile would wait for
		// it anyway.
		sc = &sharedCluster{turn: make(chan struct{}, 1)}
		sc.c, sc.err = startCluster(opts)
		sc.turn <- struct{}{}
		if shared.clusters == nil {
			shared.clusters = map[ClusterOptions]*sharedCluster{}
		}
		shared.clusters[opts] = sc
	}
	holder := sc.holder
	shared.Unlock()
	if sc.err != nil {
		t.Fatal(sc.err)
	}
	// The holder ends after its subtests: one of them waiting for the
	// cluster would wait forever.
	if holder != "" && (holder == t.Name() || strings.HasPrefix(t.Name(), holder+"/")) {
		t.Fatalf("redistest: SharedCluster: %s holds the shared cluster already; pass it down to its subtests", holder)
	}
	<-sc.turn
	shared.Lock()
	sc.holder = t.Name()
	shared.Unlock()
	t.Cleanup(func() {
		shared.Lock()
		sc.holder = ""
		shared.Unlock()
		sc.turn <- struct{}{}
	})
	if err := sc.c.waitHealthy(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := sc.c.flushAll(); err != nil {
		t.Fatalf("redistest: %v", err)
	}
	return &Cluster{t: t, cluster: sc.c, shared: true}
}

// stopSharedClusters stops what SharedCluster started.
func stopSharedClusters() {
	shared.Lock()
	defer shared.Unlock()
	for _, sc := range shared.clusters {
		if sc.c != nil {
			sc.c.stop()
		}
	}
	shared.clusters = nil
}
