package redistest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// LossyProxy sits between a Redis client and a server and loses replies on
// request: the server executes the command, the client never hears back and
// its connection breaks. go-redis then sends the command again on a new
// connection, a script included, which is how a script comes to run twice for
// one call after a read timeout or a dropped connection. Tests use it to prove
// that the ledger's scripts answer a second run as they answered the first.
//
// The proxy parses RESP, one request and one reply at a time per connection,
// so pipelines pass too (served in order).
type LossyProxy struct {
	t      testing.TB
	target string
	ln     net.Listener

	mu      sync.Mutex
	drops   []func(cmd []string) bool // one entry per reply still to lose
	dropped int
	conns   map[net.Conn]bool
	wg      sync.WaitGroup
}

// StartLossyProxy forwards a loopback port to target until the test ends.
func StartLossyProxy(t testing.TB, target string) *LossyProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &LossyProxy{t: t, target: target, ln: ln, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// Addr is where clients connect.
func (p *LossyProxy) Addr() string { return p.ln.Addr().String() }

// LoseReply makes the proxy lose the reply of the next request for which
// match is true (match sees the command's words, e.g. ["EVALSHA", sha, ...]).
// Several calls queue up, each losing one reply.
func (p *LossyProxy) LoseReply(match func(cmd []string) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.drops = append(p.drops, match)
}

// ScriptOn matches a request that runs a script (EVAL or EVALSHA) with key
// among its keys.
func ScriptOn(key string) func(cmd []string) bool {
	return func(cmd []string) bool {
		if len(cmd) < 3 || !(strings.EqualFold(cmd[0], "EVALSHA") || strings.EqualFold(cmd[0], "EVAL")) {
			return false
		}
		n, err := strconv.Atoi(cmd[2])
		if err != nil {
			return false
		}
		for _, k := range cmd[3:min(len(cmd), 3+n)] {
			if k == key {
				return true
			}
		}
		return false
	}
}

// Lost is how many replies the proxy has lost so far.
func (p *LossyProxy) Lost() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dropped
}

func (p *LossyProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns[c] = true
		p.mu.Unlock()
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *LossyProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// serve relays one client connection: a request, then its reply.
func (p *LossyProxy) serve(client net.Conn) {
	defer p.wg.Done()
	defer func() {
		client.Close()
		p.mu.Lock()
		delete(p.conns, client)
		p.mu.Unlock()
	}()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer server.Close()
	cr, sr := bufio.NewReader(client), bufio.NewReader(server)
	for {
		req, words, err := readRESP(cr)
		if err != nil {
			return
		}
		if _, err := server.Write(req); err != nil {
			return
		}
		reply, _, err := readRESP(sr)
		if err != nil {
			return
		}
		// A NOSCRIPT answer means the script did not run (go-redis then
		// sends it with EVAL): losing that would prove nothing.
		if !bytes.HasPrefix(reply, []byte("-NOSCRIPT")) && p.shouldLose(words) {
			return // executed by the server; the client never hears of it
		}
		if _, err := client.Write(reply); err != nil {
			return
		}
	}
}

func (p *LossyProxy) shouldLose(words []string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, match := range p.drops {
		if match(words) {
			p.drops = append(p.drops[:i], p.drops[i+1:]...)
			p.dropped++
			return true
		}
	}
	return false
}

// readRESP reads one complete RESP2 or RESP3 value and returns its bytes and,
// for an array of bulk strings (a request), its words.
func readRESP(r *bufio.Reader) ([]byte, []string, error) {
	var buf bytes.Buffer
	var words []string
	err := readValue(r, &buf, &words, true)
	return buf.Bytes(), words, err
}

func readValue(r *bufio.Reader, buf *bytes.Buffer, words *[]string, top bool) error {
	line, err := r.ReadBytes('\n')
	if err != nil {
		return err
	}
	buf.Write(line)
	if len(line) < 3 {
		return errors.New("redistest: malformed RESP line")
	}
	body := string(line[1 : len(line)-2])
	switch line[0] {
	case '+', '-', ':', '_', ',', '#', '(':
		return nil
	case '$', '!', '=':
		n, err := strconv.Atoi(body)
		if err != nil {
			return fmt.Errorf("redistest: RESP length %q: %w", body, err)
		}
		if n < 0 {
			return nil
		}
		data := make([]byte, n+2)
		if _, err := io.ReadFull(r, data); err != nil {
			return err
		}
		buf.Write(data)
		if words != nil {
			*words = append(*words, string(data[:n]))
		}
		return nil
	case '*', '~', '>', '%', '|':
		n, err := strconv.Atoi(body)
		if err != nil {
			return fmt.Errorf("redistest: RESP count %q: %w", body, err)
		}
		if line[0] == '%' || line[0] == '|' {
			n *= 2
		}
		var w *[]string
		if top && line[0] == '*' {
			w = words
		}
		for range max(n, 0) {
			if err := readValue(r, buf, w, false); err != nil {
				return err
			}
		}
		if line[0] == '|' { // an attribute precedes the value it describes
			return readValue(r, buf, words, top)
		}
		return nil
	}
	return fmt.Errorf("redistest: unknown RESP type %q", line[0])
}
