package main

// The metaserver is killed with SIGKILL in the middle of an untar on the
// mount and started again on the same data directory and address: the
// tar goes on without a remount and every file ends up intact. While it
// stays down longer than a mount's --timeout, operations on that mount
// fail with ETIMEDOUT in bounded time, and work again once it is back.
// An rm -rf across another kill removes everything.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// goSourceTar writes a tar of a few thousand small files from the Go
// source tree and returns its path.
func goSourceTar(t *testing.T, dir string) string {
	t.Helper()
	src := "/usr/local/go/src"
	if _, err := os.Stat(filepath.Join(src, "net")); err != nil {
		t.Skipf("no Go source tree to untar: %v", err)
	}
	tarPath := filepath.Join(dir, "src.tar")
	tool(t, src, 120*time.Second, "tar", "cf", tarPath, "net", "go", "encoding", "crypto")
	return tarPath
}

func TestProcessClusterMetaserverKill9(t *testing.T) {
	t.Parallel()
	needFUSE(t)
	tmp := t.TempDir()
	tarPath := goSourceTar(t, tmp)
	local := filepath.Join(tmp, "local")
	if err := os.Mkdir(local, 0o755); err != nil {
		t.Fatal(err)
	}
	tool(t, local, 120*time.Second, "tar", "xf", tarPath)

	dir, mnt, shortMnt := filepath.Join(tmp, "cluster"), mountDir(t), mountDir(t)
	addr := fmt.Sprintf("127.0.0.1:%d", freeUDPPort(t))
	ca := filepath.Join(dir, "meta", "cluster.pem")
	startMeta := func(round int) *proc {
		p := startCairn(t, fmt.Sprintf("meta (round %d)", round), "meta", "--data", filepath.Join(dir, "meta"), "--listen", addr)
		p.waitStderr(t, "metaserver listening on "+addr, 15*time.Second)
		return p
	}
	meta := startMeta(1)
	for i := 1; i <= 3; i++ {
		p := startCairn(t, fmt.Sprintf("chunk%d", i), "chunk", "--data", filepath.Join(dir, fmt.Sprintf("chunk%d", i)), "--meta", addr, "--ca", ca)
		p.waitStderr(t, "registered with "+addr, 20*time.Second)
	}
	mount := startCairn(t, "mount", "mount", "--meta", addr, "--ca", ca, "--timeout", "60s", mnt)
	waitMounted(t, mount, mnt, 30*time.Second)
	const shortTimeout = 3 * time.Second
	short := startCairn(t, "mount --timeout 3s", "mount", "--meta", addr, "--ca", ca, "--timeout", shortTimeout.String(), shortMnt)
	waitMounted(t, short, shortMnt, 30*time.Second)
	defer func() {
		if t.Failed() {
			t.Logf("mount stderr:\n%s\nmeta stderr:\n%s", mount.stderr.String(), meta.stderr.String())
		}
	}()

	// Untar on the mount; kill the metaserver once a few hundred entries
	// are through, keep it down for 2s, and start it again.
	tree := filepath.Join(mnt, "tree")
	if err := os.Mkdir(tree, 0o755); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	untar := startProc(t, "tar x on the mount", "tar", "xvf", tarPath, "-C", tree)
	waitFor(t, 120*time.Second, "tar to extract 400 entries", func() bool {
		return strings.Count(untar.stdout.String(), "\n") >= 400 || untar.exited()
	})
	if untar.exited() {
		t.Fatalf("tar ended before the kill: %s", untar.stderr.String())
	}
	meta.cmd.Process.Kill()
	if code := meta.wait(t, 10*time.Second); code != -1 {
		t.Fatalf("meta: exit status %d after SIGKILL", code)
	}
	killed := time.Now()
	entriesAtKill := strings.Count(untar.stdout.String(), "\n")
	time.Sleep(2 * time.Second)
	meta = startMeta(2)
	restarted := time.Now()
	// And once more, started again at once.
	waitFor(t, 120*time.Second, "tar to extract 1200 entries", func() bool {
		return strings.Count(untar.stdout.String(), "\n") >= 1200 || untar.exited()
	})
	if !untar.exited() {
		meta.cmd.Process.Kill()
		meta.wait(t, 10*time.Second)
		meta = startMeta(3)
		t.Logf("untar: killed the metaserver again at %d entries and started it at once", strings.Count(untar.stdout.String(), "\n"))
	}
	code := untar.wait(t, 300*time.Second)
	finished := time.Now()
	if code != 0 {
		t.Fatalf("tar x on the mount: exit %d across the metaserver restart:\n%s", code, untar.stderr.String())
	}
	t.Logf("untar: killed the metaserver %v in (%d entries through), down %v, tar done %v after the restart (%v in all)",
		killed.Sub(start).Round(time.Millisecond), entriesAtKill, restarted.Sub(killed).Round(time.Millisecond),
		finished.Sub(restarted).Round(time.Millisecond), finished.Sub(start).Round(time.Millisecond))

	want, got := snap(t, local), snap(t, tree)
	compareSnaps(t, "the tree untarred across a metaserver kill -9, against a local untar", want, got,
		compareOpts{ignoreDirSize: true, ignoreDirNlink: true, ignoreRootTime: true})
	var files, bytes int64
	for _, e := range got {
		if e.sum != "" {
			files++
			bytes += e.size
		}
	}
	t.Logf("verified %d files, %d bytes (sha256, mode, owner, mtime) against a local untar", files, bytes)
	r := cairn(t, 120*time.Second, "fsck", "--meta", addr, "--ca", ca)
	if r.code != 0 || !strings.Contains(r.stdout, "\n0 problems") {
		t.Errorf("fsck after the metaserver kill: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// rm -rf of the tree, with the metaserver killed and started again
	// in the middle: everything goes, and the namespace stays whole. rm
	// takes about a second here, so it is stopped (SIGSTOP) once a few
	// hundred entries are gone, to be sure it is still in the middle
	// when the metaserver dies, and let go against the dead one.
	rm := startProc(t, "rm -rf on the mount", "rm", "-rfv", tree)
	waitFor(t, 120*time.Second, "rm to remove 200 entries", func() bool {
		return strings.Count(rm.stdout.String(), "\n") >= 200 || rm.exited()
	})
	rm.signal(t, syscall.SIGSTOP)
	if rm.exited() {
		t.Fatalf("rm -rf ended before the kill: %s", rm.stderr.String())
	}
	t.Logf("rm -rf: killing the metaserver %d entries in", strings.Count(rm.stdout.String(), "\n"))
	meta.cmd.Process.Kill()
	meta.wait(t, 10*time.Second)
	rm.signal(t, syscall.SIGCONT)
	time.Sleep(time.Second)
	meta = startMeta(4)
	if code := rm.wait(t, 300*time.Second); code != 0 {
		t.Errorf("rm -rf on the mount across a metaserver restart: exit %d: %s", code, rm.stderr.String())
	}
	if _, err := os.Lstat(tree); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after rm -rf across a metaserver restart, %s: %v, want ENOENT", tree, err)
	}
	r = cairn(t, 120*time.Second, "fsck", "--meta", addr, "--ca", ca)
	if r.code != 0 || !strings.Contains(r.stdout, "\n0 problems") {
		t.Errorf("fsck after rm -rf across a metaserver kill: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// rm has closed everything: an inode still kept open leaked.
	if strings.Contains(r.stdout, "still open on a mount") {
		t.Errorf("fsck after rm -rf across a metaserver kill: removed inodes are still kept open, with rm gone:\n%s", r.stdout)
	}

	// Down longer than the short mount's --timeout: operations that need
	// the metaserver fail with ETIMEDOUT, each within a bounded time.
	meta.cmd.Process.Kill()
	meta.wait(t, 10*time.Second)
	bound := shortTimeout + 10*time.Second // the timeout, plus one QUIC handshake or idle timeout (5s) and slack
	ops := []struct {
		name string
		do   func(i int) error
	}{
		{"create", func(i int) error {
			return os.WriteFile(filepath.Join(shortMnt, fmt.Sprintf("while-down-%d", i)), []byte("x"), 0o644)
		}},
		{"mkdir", func(i int) error {
			return os.Mkdir(filepath.Join(shortMnt, fmt.Sprintf("dir-while-down-%d", i)), 0o755)
		}},
		{"stat of a new name", func(i int) error {
			_, err := os.Lstat(filepath.Join(shortMnt, fmt.Sprintf("never-%d", i)))
			if errors.Is(err, os.ErrNotExist) {
				return nil // an answer from the metaserver: wrong while it is down
			}
			return err
		}},
	}
	for i, op := range ops {
		opStart := time.Now()
		done := make(chan error, 1)
		go func() { done <- op.do(i) }()
		select {
		case err := <-done:
			took := time.Since(opStart)
			if !errors.Is(err, syscall.ETIMEDOUT) && !errors.Is(err, syscall.EIO) {
				t.Errorf("%s with the metaserver down: err %v, want ETIMEDOUT or EIO", op.name, err)
			}
			if took > bound {
				t.Errorf("%s with the metaserver down took %v, want at most %v", op.name, took, bound)
			}
			t.Logf("%s with the metaserver down (--timeout %v): %v after %v", op.name, shortTimeout, err, took.Round(time.Millisecond))
		case <-time.After(2 * bound):
			t.Fatalf("%s with the metaserver down: no answer after %v", op.name, 2*bound)
		}
	}
	// It comes back: the same mounts work again.
	meta = startMeta(5)
	back := time.Now()
	for i, op := range ops {
		var err error
		for try := 0; try < 20; try++ {
			if err = op.do(100 + i); err == nil {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		if err != nil {
			t.Errorf("%s after the metaserver came back: %v", op.name, err)
		}
	}
	t.Logf("the --timeout 3s mount works again %v after the restart", time.Since(back).Round(time.Millisecond))
	if err := os.WriteFile(filepath.Join(mnt, "after"), []byte("after\n"), 0o644); err != nil {
		t.Errorf("write on the first mount after the second restart: %v", err)
	}
	r = cairn(t, 120*time.Second, "fsck", "--meta", addr, "--ca", ca)
	if r.code != 0 || !strings.Contains(r.stdout, "\n0 problems") {
		t.Errorf("fsck at the end: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	stopUp(t, short, shortMnt, syscall.SIGTERM)
	stopUp(t, mount, mnt, syscall.SIGTERM)
}
