package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-fs/cairn/internal/testcluster"
	"github.com/cairn-fs/cairn/internal/wire"
	"golang.org/x/sys/unix"
)

// startMountProc mounts the test cluster on a fresh directory with a
// separate `cairn mount` process, as another machine would.
func startMountProc(t *testing.T, c *testcluster.Cluster) (*exec.Cmd, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(cairnBin, "mount", "--meta", c.Meta.Addr(), "--ca", filepath.Join(c.Dir, "cluster.pem"), dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		syscall.Unmount(dir, syscall.MNT_DETACH)
	})
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var st, parent syscall.Stat_t
		if syscall.Stat(dir, &st) == nil && syscall.Stat(filepath.Dir(dir), &parent) == nil && st.Dev != parent.Dev {
			return cmd, dir
		}
		if time.Now().After(deadline) {
			t.Fatal("cairn mount did not come up")
		}
	}
}

// crashMount kills a `cairn mount` process with SIGKILL and detaches its
// dead mountpoint.
func crashMount(t *testing.T, cmd *exec.Cmd, dir string) {
	t.Helper()
	cmd.Process.Kill()
	cmd.Wait()
	if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
		t.Logf("detach %s: %v", dir, err)
	}
}

// orphanFrom makes a file through the in-process mount, opens it through
// the mount at dir, locks it there and unlinks it there: the metaserver
// keeps it as an orphan of that mount's session. It returns the inode and
// the open descriptor.
func orphanFrom(t *testing.T, c *testcluster.Cluster, dir, name string) (uint64, *os.File) {
	t.Helper()
	if err := os.WriteFile(c.Path(name), make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("still here"), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	a, err := c.Client.GetAttr(context.Background(), st.Ino)
	if err != nil || a.Nlink != 0 {
		t.Fatalf("unlinked open file: nlink %d, err %v; want an orphan with nlink 0", a.Nlink, err)
	}
	return st.Ino, f
}

func waitGone(t *testing.T, c *testcluster.Cluster, ino uint64, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		_, err := c.Client.GetAttr(context.Background(), ino)
		if errors.Is(err, wire.ErrNotFound) {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("orphan %d still there %v after its mount died (err %v)", ino, within, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCrashedMountReleasesOrphansAndLocks: a `cairn mount` killed with
// SIGKILL while it holds a lock and an unlinked open file loses both
// when its session expires; after a metaserver restart an orphan whose
// mount is gone is purged one session TTL later.
func TestCrashedMountReleasesOrphansAndLocks(t *testing.T) {
	const ttl = 2 * time.Second
	c := testcluster.Start(t, testcluster.Options{SessionTTL: ttl})

	mount, dir := startMountProc(t, c)
	ino, f := orphanFrom(t, c, dir, "orphan")
	if n := c.Meta.LockCount(); n != 1 {
		t.Fatalf("metaserver holds %d locks, want the mount's flock", n)
	}
	crashMount(t, mount, dir)
	f.Close() // the dead mount answers nothing; the descriptor just goes
	took := waitGone(t, c, ino, ttl+5*time.Second)
	t.Logf("orphan purged %v after kill -9 of its mount (session TTL %v)", took, ttl)
	if n := c.Meta.LockCount(); n != 0 {
		t.Fatalf("metaserver holds %d locks after the mount's session expired", n)
	}

	// The same, with a metaserver restart right after the crash. The
	// orphan is kept for a TTL (a living mount would renew its session
	// in time): gone at a look within it is wrong; a look after it (the
	// restart was slow) proves nothing, and the step runs again.
	for try := 0; ; try++ {
		mount, dir = startMountProc(t, c)
		ino, f = orphanFrom(t, c, dir, fmt.Sprint("orphan-restart-", try))
		crashMount(t, mount, dir)
		f.Close()
		restart := time.Now() // the new metaserver's TTL starts later
		c.Restart(t)
		_, err := c.Client.GetAttr(context.Background(), ino)
		if err == nil {
			break
		}
		if since := time.Since(restart); since < ttl {
			t.Fatalf("orphan gone %v after the restart began (%v); its session deserves one TTL", since, err)
		}
		if try == 2 {
			t.Fatalf("the machine is too slow for this test: three restarts each took longer than the %v TTL", ttl)
		}
		t.Logf("restart and look took %v, past the %v TTL: again", time.Since(restart), ttl)
	}
	took = waitGone(t, c, ino, ttl+5*time.Second)
	t.Logf("orphan purged %v after the metaserver restart", took)
}

// TestLiveMountKeepsOrphanPastTTL: a living mount renews its session, so
// its unlinked open file outlives many session TTLs.
func TestLiveMountKeepsOrphanPastTTL(t *testing.T) {
	const ttl = time.Second
	c := testcluster.Start(t, testcluster.Options{SessionTTL: ttl})
	_, f := orphanFrom(t, c, c.MountDir, "kept")
	defer f.Close()
	time.Sleep(3 * ttl)
	buf := make([]byte, 10)
	if _, err := f.ReadAt(buf, 0); err != nil || string(buf) != "still here" {
		t.Fatalf("unlinked open file after %v: %q, %v", 3*ttl, buf, err)
	}
}
