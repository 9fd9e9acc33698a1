package main

// A multi-process cluster loses a chunkserver to SIGKILL: reads and
// writes go on, the blocks it held are copied again onto the survivors,
// it comes back and the extra copies go, another is drained away, and
// status and /metrics show the work.

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// blockCopies counts, per block ID, the chunk directories holding it.
func blockCopies(t *testing.T, dirs ...string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, d := range dirs {
		files, _ := filepath.Glob(filepath.Join(d, "blocks", "*", "*"))
		for _, f := range files {
			out[filepath.Base(f)]++
		}
	}
	return out
}

// everyBlockHas reports whether each of ids has exactly n copies in dirs.
func everyBlockHas(t *testing.T, ids map[string]int, n int, dirs ...string) bool {
	got := blockCopies(t, dirs...)
	for id := range ids {
		if got[id] != n {
			return false
		}
	}
	return true
}

func freeTCPAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestProcessClusterChunkserverKill9(t *testing.T) {
	t.Parallel()
	needFUSE(t)
	tmp := t.TempDir()
	dir, mnt := filepath.Join(tmp, "cluster"), mountDir(t)
	addr := fmt.Sprintf("127.0.0.1:%d", freeUDPPort(t))
	ca := filepath.Join(dir, "meta", "cluster.pem")
	metrics := freeTCPAddr(t)
	meta := startCairn(t, "meta", "meta", "--data", filepath.Join(dir, "meta"), "--listen", addr,
		"--down-after", "2s", "--reconcile-every", "500ms", "--gc-grace", "30s", "--metrics", metrics)
	meta.waitStderr(t, "metaserver listening on "+addr, 15*time.Second)
	chunkDir := func(i int) string { return filepath.Join(dir, fmt.Sprintf("chunk%d", i)) }
	chunkMetrics := freeTCPAddr(t)
	startChunk := func(i int) *proc {
		args := []string{"chunk", "--data", chunkDir(i), "--meta", addr, "--ca", ca}
		if i == 3 {
			args = append(args, "--metrics", chunkMetrics)
		}
		p := startCairn(t, fmt.Sprintf("chunk%d", i), args...)
		p.waitStderr(t, "registered with "+addr, 20*time.Second)
		return p
	}
	chunks := map[int]*proc{}
	for i := 1; i <= 4; i++ {
		chunks[i] = startChunk(i)
	}
	// A tiny block cache, so that reads come from the chunkservers.
	mount := startCairn(t, "mount", "mount", "--meta", addr, "--ca", ca, "--cache-mb", "1", mnt)
	waitMounted(t, mount, mnt, 30*time.Second)

	want := map[string]string{}
	var total int
	write := func(name string, data []byte) time.Duration {
		t.Helper()
		total += len(data)
		return writeTimed(t, mnt, name, data, want)
	}
	for i := range 6 {
		write(fmt.Sprintf("before-%d", i), pattern(uint64(i+1), 3<<20+i*77777))
	}
	all := func() []string {
		var d []string
		for i := 1; i <= 5; i++ {
			d = append(d, chunkDir(i))
		}
		return d
	}
	ids := blockCopies(t, all()...)
	if !everyBlockHas(t, ids, 3, all()...) {
		t.Fatalf("before the kill, not every block has 3 copies: %v", ids)
	}
	victimBlocks := len(blockCopies(t, chunkDir(1)))

	chunks[1].cmd.Process.Kill()
	if code := chunks[1].wait(t, 10*time.Second); code != -1 {
		t.Fatalf("chunk1: exit status %d after SIGKILL", code)
	}
	killed := time.Now()
	// Writes at once, while the metaserver still counts it up, and reads.
	for i := range 3 {
		took := write(fmt.Sprintf("during-%d", i), pattern(uint64(100+i), 5<<20+i))
		t.Logf("wrote during-%d in %v, %v after the kill", i, took.Round(time.Millisecond), time.Since(killed).Round(time.Millisecond))
	}
	checkSums(t, mnt, want, "with a chunkserver killed")
	if t.Failed() {
		t.Fatalf("mount stderr:\n%s\nmeta stderr:\n%s", mount.stderr.String(), meta.stderr.String())
	}
	survivors := []string{chunkDir(2), chunkDir(3), chunkDir(4)}
	ids = blockCopies(t, all()...)
	waitFor(t, 60*time.Second, "every block has 3 copies on the 3 survivors", func() bool { return everyBlockHas(t, ids, 3, survivors...) })
	t.Logf("repair: %d blocks the killed chunkserver held have 3 copies again %v after the kill (down after 2s)",
		victimBlocks, time.Since(killed).Round(time.Millisecond))
	var st result
	deadline := time.Now().Add(10 * time.Second)
	for {
		st = cairn(t, 20*time.Second, "status", "--meta", addr, "--ca", ca)
		if st.code == 0 && strings.Contains(st.stdout, " under-replicated 0 ") && strings.Contains(st.stdout, "  down  ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status does not show 0 under-replicated blocks and a down chunkserver:\n%s%s", st.stdout, st.stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("status:\n%s", st.stdout)
	m := scrape(t, metrics)
	for _, line := range []string{"cairn_blocks_under_replicated 0", `cairn_chunkservers{state="down"} 1`} {
		if !strings.Contains(m, line) {
			t.Errorf("/metrics lacks %q:\n%s", line, m)
		}
	}
	if strings.Contains(m, "cairn_bytes_moved_total 0\n") {
		t.Errorf("/metrics shows no bytes moved:\n%s", m)
	}
	if m := scrape(t, chunkMetrics); !strings.Contains(m, "cairn_chunk_disk_total_bytes ") || !strings.Contains(m, "cairn_chunk_bytes_fetched_total ") {
		t.Errorf("chunkserver /metrics lacks its disk and fetch counters:\n%s", m)
	}

	// It comes back: the blocks written while it was away go to their
	// top 3, and copies beyond the top 3 are deleted.
	chunks[1] = startChunk(1)
	waitFor(t, 60*time.Second, "every block has exactly 3 copies after chunk1 returns", func() bool { return everyBlockHas(t, ids, 3, all()...) })
	checkSums(t, mnt, want, "after the killed chunkserver returned")

	// Drain chunk2: its blocks move to the others, and it ends up empty.
	id2, err := os.ReadFile(filepath.Join(chunkDir(2), "node-id"))
	if err != nil {
		t.Fatal(err)
	}
	r := cairn(t, 20*time.Second, "drain", "--meta", addr, "--ca", ca, strings.TrimSpace(string(id2)))
	if r.code != 0 {
		t.Fatalf("drain: exit %d: %s", r.code, r.stderr)
	}
	others := []string{chunkDir(1), chunkDir(3), chunkDir(4)}
	waitFor(t, 60*time.Second, "chunk2 is drained", func() bool {
		return len(blockCopies(t, chunkDir(2))) == 0 && everyBlockHas(t, ids, 3, others...)
	})
	st = cairn(t, 20*time.Second, "status", "--meta", addr, "--ca", ca)
	if !strings.Contains(st.stdout, "draining") {
		t.Errorf("status does not show chunk2 draining:\n%s", st.stdout)
	}
	r = cairn(t, 60*time.Second, "fsck", "--verify", "--meta", addr, "--ca", ca)
	if r.code != 0 || !strings.Contains(r.stdout, "\n0 problems") {
		t.Errorf("fsck after the drain: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("fsck:\n%s", r.stdout)
	chunks[2].cmd.Process.Kill()
	checkSums(t, mnt, want, "after chunk2 was drained and killed")
	t.Logf("verified %d files, %d MiB", len(want), total>>20)
	stopUp(t, mount, mnt, 15)
}
