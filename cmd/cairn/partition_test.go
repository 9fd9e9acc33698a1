package main

// A network partition between the mount and one chunkserver, made by a
// UDP forwarder the chunkserver advertises as its address: writes and
// reads go on through the other replicas, and once the partition heals
// nothing acknowledged is lost and fsck finds every copy.

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// udpProxy forwards datagrams between its clients and one upstream
// address, one upstream socket per client, and drops every datagram in
// both directions while partitioned.
type udpProxy struct {
	ln          *net.UDPConn
	upstream    *net.UDPAddr
	partitioned atomic.Bool
	answersLost atomic.Bool // drop only what upstream sends back
	dropped     atomic.Int64
	mu          struct {
		sync.Mutex
		peers map[string]*net.UDPConn // client address -> socket to upstream
	}
}

func startUDPProxy(t *testing.T, upstream string) *udpProxy {
	t.Helper()
	up, err := net.ResolveUDPAddr("udp", upstream)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := &udpProxy{ln: ln, upstream: up}
	p.mu.peers = map[string]*net.UDPConn{}
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.mu.peers {
			c.Close()
		}
		p.mu.Unlock()
	})
	return p
}

func (p *udpProxy) addr() string { return p.ln.LocalAddr().String() }

func (p *udpProxy) serve() {
	buf := make([]byte, 64<<10)
	for {
		n, from, err := p.ln.ReadFromUDP(buf)
		if err != nil {
			return // closed
		}
		if p.partitioned.Load() {
			p.dropped.Add(1)
			continue
		}
		up, err := p.peer(from)
		if err != nil {
			continue
		}
		up.Write(buf[:n])
	}
}

// peer returns the upstream socket for client from, starting the
// goroutine that carries answers back to it.
func (p *udpProxy) peer(from *net.UDPAddr) (*net.UDPConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.mu.peers[from.String()]; ok {
		return c, nil
	}
	c, err := net.DialUDP("udp", nil, p.upstream)
	if err != nil {
		return nil, err
	}
	p.mu.peers[from.String()] = c
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			if p.partitioned.Load() || p.answersLost.Load() {
				p.dropped.Add(1)
				continue
			}
			p.ln.WriteToUDP(buf[:n], from)
		}
	}()
	return c, nil
}

func TestProcessClusterChunkserverPartition(t *testing.T) {
	t.Parallel()
	needFUSE(t)
	tmp := t.TempDir()
	dir, mnt := filepath.Join(tmp, "cluster"), mountDir(t)
	addr := fmt.Sprintf("127.0.0.1:%d", freeUDPPort(t))
	ca := filepath.Join(dir, "meta", "cluster.pem")
	meta := startCairn(t, "meta", "meta", "--data", filepath.Join(dir, "meta"), "--listen", addr,
		"--down-after", "2s", "--reconcile-every", "500ms")
	meta.waitStderr(t, "metaserver listening on "+addr, 15*time.Second)
	// chunk4 is reached only through the proxy: everyone (the mount, the
	// metaserver, the other chunkservers) dials the address it advertises.
	chunk4Addr := fmt.Sprintf("127.0.0.1:%d", freeUDPPort(t))
	proxy := startUDPProxy(t, chunk4Addr)
	for i := 1; i <= 4; i++ {
		args := []string{"chunk", "--data", filepath.Join(dir, fmt.Sprintf("chunk%d", i)), "--meta", addr, "--ca", ca}
		if i == 4 {
			args = append(args, "--listen", chunk4Addr, "--advertise", proxy.addr())
		}
		p := startCairn(t, fmt.Sprintf("chunk%d", i), args...)
		p.waitStderr(t, "registered with "+addr, 20*time.Second)
	}
	// A tiny block cache, so that reads come from the chunkservers.
	mount := startCairn(t, "mount", "mount", "--meta", addr, "--ca", ca, "--cache-mb", "1", mnt)
	waitMounted(t, mount, mnt, 30*time.Second)
	defer func() {
		if t.Failed() {
			t.Logf("mount stderr:\n%s\nmeta stderr:\n%s", mount.stderr.String(), meta.stderr.String())
		}
	}()

	want := map[string]string{}
	write := func(name string, data []byte) time.Duration {
		t.Helper()
		return writeTimed(t, mnt, name, data, want)
	}
	for i := range 6 {
		write(fmt.Sprintf("before-%d", i), pattern(uint64(i+1), 3<<20+i*77777))
	}
	onChunk4 := len(blockCopies(t, filepath.Join(dir, "chunk4")))
	if onChunk4 == 0 {
		t.Fatalf("no block of the 6 files is on chunk4: the partition would test nothing")
	}

	proxy.partitioned.Store(true)
	cut := time.Now()
	for i := range 3 {
		took := write(fmt.Sprintf("during-%d", i), pattern(uint64(100+i), 5<<20+i))
		t.Logf("wrote during-%d in %v with chunk4 cut off", i, took.Round(time.Millisecond))
	}
	readStart := time.Now()
	checkSums(t, mnt, want, "with chunk4 cut off from everyone")
	t.Logf("read back %d files in %v with chunk4 (holding %d blocks) cut off", len(want), time.Since(readStart).Round(time.Millisecond), onChunk4)
	if proxy.dropped.Load() == 0 {
		t.Errorf("the proxy dropped nothing: nobody tried chunk4 during the partition")
	}
	t.Logf("partition: %d datagrams dropped in %v", proxy.dropped.Load(), time.Since(cut).Round(time.Millisecond))

	proxy.partitioned.Store(false)
	healed := time.Now()
	checkSums(t, mnt, want, "after the partition healed")
	var r result
	waitFor(t, 90*time.Second, "fsck to find 0 problems after the partition healed", func() bool {
		r = cairn(t, 60*time.Second, "fsck", "--verify", "--meta", addr, "--ca", ca)
		return r.code == 0 && strings.Contains(r.stdout, "\n0 problems")
	})
	t.Logf("fsck --verify finds 0 problems %v after the partition healed", time.Since(healed).Round(time.Millisecond))

	// A second mount reaches the metaserver through a proxy that loses
	// every answer for 7s, longer than QUIC's idle timeout (5s), so the
	// connection dies and the calls are sent again on a new one: the
	// requests were executed, and their retries must get the first
	// answers (not EEXIST for a mkdir that happened).
	metaProxy := startUDPProxy(t, addr)
	mnt2 := mountDir(t)
	mount2 := startCairn(t, "mount via the proxy", "mount", "--meta", metaProxy.addr(), "--ca", ca, mnt2)
	waitMounted(t, mount2, mnt2, 30*time.Second)
	metaProxy.answersLost.Store(true)
	lost := time.Now()
	done := make(chan error, 1)
	go func() {
		if err := os.Mkdir(filepath.Join(mnt2, "made-while-answers-lost"), 0o755); err != nil {
			done <- err
			return
		}
		done <- os.WriteFile(filepath.Join(mnt2, "made-while-answers-lost", "f"), pattern(200, 3<<20), 0o644)
	}()
	time.Sleep(7 * time.Second)
	metaProxy.answersLost.Store(false)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("mkdir and write while the metaserver's answers were lost for 7s: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("mkdir and write while the metaserver's answers were lost: no answer 60s after they were let through again")
	}
	t.Logf("mkdir and write through a metaserver proxy losing answers: done %v after the loss began (%d datagrams dropped)",
		time.Since(lost).Round(time.Millisecond), metaProxy.dropped.Load())
	if !strings.Contains(mount2.stderr.String(), "metaserver unreachable; retrying") {
		t.Errorf("the mount through the proxy never retried a metaserver call; the test did not lose a connection:\n%s", mount2.stderr.String())
	}
	want["made-while-answers-lost/f"] = sumHex(pattern(200, 3<<20))
	checkSums(t, mnt, want, "on the first mount, after the second mount lost answers")
	stopUp(t, mount2, mnt2, syscall.SIGTERM)
	stopUp(t, mount, mnt, syscall.SIGTERM)
}
