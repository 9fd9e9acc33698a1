package fs_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-fs/cairn/internal/testcluster"
	"github.com/cairn-fs/cairn/internal/wire"
	"golang.org/x/sys/unix"
)

// lockTrace runs one sequence of OFD, fcntl and flock operations on path
// through two open file descriptions and returns what each step answered.
// TestLockSemanticsMatchLocal runs it on a local directory and on a mount.
func lockTrace(t *testing.T, path string) []string {
	if err := os.WriteFile(path, make([]byte, 200), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var trace []string
	names := map[*os.File]string{a: "a", b: "b"}
	types := map[int16]string{unix.F_RDLCK: "R", unix.F_WRLCK: "W", unix.F_UNLCK: "U"}
	// FUSE delivers the release of a description's flock and OFD locks
	// after close(2) returns (FUSE_RELEASE is asynchronous, and each lock
	// owner's release is its own call), so the steps in the 2 s after a
	// close may retry; on ext4 they never must.
	var releasing time.Time // until when steps retry
	retry := func(op func() error) error {
		for {
			err := op()
			if err == nil || time.Now().After(releasing) {
				return err
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	set := func(f *os.File, typ int16, start, n int64) {
		lk := unix.Flock_t{Type: typ, Start: start, Len: n}
		err := retry(func() error { return unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk) })
		trace = append(trace, fmt.Sprintf("%s set %s [%d+%d]: %v", names[f], types[typ], start, n, err))
	}
	get := func(f *os.File, typ int16, start, n int64) {
		lk := unix.Flock_t{Type: typ, Start: start, Len: n}
		err := unix.FcntlFlock(f.Fd(), unix.F_OFD_GETLK, &lk)
		trace = append(trace, fmt.Sprintf("%s get %s [%d+%d]: %v → %s [%d+%d]", names[f], types[typ], start, n, err, types[lk.Type], lk.Start, lk.Len))
	}
	flock := func(f *os.File, how int) {
		err := retry(func() error { return unix.Flock(int(f.Fd()), how) })
		trace = append(trace, fmt.Sprintf("%s flock %d: %v", names[f], how, err))
	}
	set(a, unix.F_WRLCK, 0, 100)
	get(b, unix.F_WRLCK, 50, 10)
	get(b, unix.F_RDLCK, 150, 0) // to the end: nothing there
	set(b, unix.F_RDLCK, 99, 1)
	set(a, unix.F_UNLCK, 40, 20) // a now holds [0,40) and [60,100)
	set(b, unix.F_WRLCK, 40, 20)
	set(b, unix.F_WRLCK, 39, 2)
	set(a, unix.F_RDLCK, 0, 40) // downgrade
	set(b, unix.F_RDLCK, 0, 10)
	set(b, unix.F_WRLCK, 0, 10)
	set(a, unix.F_WRLCK, 40, 20)
	set(b, unix.F_UNLCK, 40, 20)
	set(a, unix.F_WRLCK, 40, 20) // merges with [60,100)
	get(b, unix.F_RDLCK, 30, 20)
	get(b, unix.F_WRLCK, 100, 0)
	set(b, unix.F_WRLCK, 100, 0) // to the end of any file
	get(a, unix.F_RDLCK, 1<<40, 5)
	set(a, unix.F_UNLCK, 0, 0)
	get(a, unix.F_WRLCK, 0, 1)
	set(b, unix.F_UNLCK, 0, 0)
	get(a, unix.F_WRLCK, 0, 0)

	flock(a, unix.LOCK_SH)
	flock(b, unix.LOCK_SH|unix.LOCK_NB)
	flock(b, unix.LOCK_EX|unix.LOCK_NB) // fails, and b has lost its shared lock
	flock(a, unix.LOCK_EX|unix.LOCK_NB) // so a can convert to exclusive
	flock(a, unix.LOCK_UN)
	flock(b, unix.LOCK_EX|unix.LOCK_NB) // upgrade: a let go
	flock(a, unix.LOCK_SH|unix.LOCK_NB)
	// flock and fcntl locks do not see each other.
	set(a, unix.F_WRLCK, 0, 0)
	// Closing a description releases its OFD and flock locks.
	b.Close()
	releasing = time.Now().Add(2 * time.Second)
	flock(a, unix.LOCK_EX|unix.LOCK_NB)
	c, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	names[c] = "c"
	set(c, unix.F_WRLCK, 0, 0)
	a.Close()
	releasing = time.Now().Add(2 * time.Second)
	set(c, unix.F_WRLCK, 0, 0)
	flock(c, unix.LOCK_EX|unix.LOCK_NB)
	return trace
}

func TestLockSemanticsMatchLocal(t *testing.T) {
	want := lockTrace(t, filepath.Join(t.TempDir(), "f"))
	c := testcluster.Start(t, testcluster.Options{})
	got := lockTrace(t, c.Path("f"))
	for i := range max(len(want), len(got)) {
		w, g := "", ""
		if i < len(want) {
			w = want[i]
		}
		if i < len(got) {
			g = got[i]
		}
		if w != g {
			t.Errorf("step %d: local %q, cairn %q", i, w, g)
		}
	}
}

// TestLockHelper is not a test: it is the lock-holding process the
// tests below start (go test re-executing itself), doing what
// CAIRN_LOCK_HELPER says on CAIRN_LOCK_FILE and reporting on stdout.
func TestLockHelper(t *testing.T) {
	mode := os.Getenv("CAIRN_LOCK_HELPER")
	if mode == "" {
		return
	}
	say := func(s string) { fmt.Println(s); os.Stdout.Sync() }
	f, err := os.OpenFile(os.Getenv("CAIRN_LOCK_FILE"), os.O_RDWR, 0)
	if err != nil {
		say("error " + err.Error())
		os.Exit(1)
	}
	if mode == "deadlock" {
		// Lock 10 bytes at CAIRN_LOCK_FIRST; on a line from stdin, wait
		// for 10 at CAIRN_LOCK_SECOND.
		first, _ := strconv.Atoi(os.Getenv("CAIRN_LOCK_FIRST"))
		second, _ := strconv.Atoi(os.Getenv("CAIRN_LOCK_SECOND"))
		lk := unix.Flock_t{Type: unix.F_WRLCK, Start: int64(first), Len: 10}
		if err := unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk); err != nil {
			say("error " + err.Error())
			os.Exit(1)
		}
		say("locked")
		in := bufio.NewReader(os.Stdin)
		in.ReadString('\n')
		lk = unix.Flock_t{Type: unix.F_WRLCK, Start: int64(second), Len: 10}
		if err := unix.FcntlFlock(f.Fd(), unix.F_SETLKW, &lk); err != nil {
			say("wait: " + err.Error())
		} else {
			say("wait: got it")
		}
		io.Copy(io.Discard, in)
		os.Exit(0)
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Start: 0, Len: 0}
	cmd := unix.F_SETLK
	if mode == "wait" {
		cmd = unix.F_SETLKW
		say("waiting")
	}
	if err := unix.FcntlFlock(f.Fd(), cmd, &lk); err != nil {
		say("error " + err.Error())
		os.Exit(1)
	}
	say("locked")
	if mode == "close-other" {
		// Closing any descriptor of the file drops the process's locks.
		other, err := os.Open(os.Getenv("CAIRN_LOCK_FILE"))
		if err == nil {
			err = other.Close()
		}
		say(fmt.Sprintf("closed %v", err))
	}
	io.Copy(io.Discard, os.Stdin) // hold until killed
	os.Exit(0)
}

type lockHelper struct {
	cmd   *exec.Cmd
	lines chan string
	stdin io.WriteCloser
}

func startLockHelper(t *testing.T, mode, path string, env ...string) *lockHelper {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelper$")
	cmd.Env = append(append(os.Environ(), "CAIRN_LOCK_HELPER="+mode, "CAIRN_LOCK_FILE="+path), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &lockHelper{cmd: cmd, lines: make(chan string, 16), stdin: stdin}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			h.lines <- sc.Text()
		}
		close(h.lines)
	}()
	t.Cleanup(func() { h.kill() })
	return h
}

func (h *lockHelper) kill() {
	h.cmd.Process.Kill()
	h.cmd.Wait()
}

// expect waits for the helper to print want.
func (h *lockHelper) expect(t *testing.T, want string, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case line, ok := <-h.lines:
			if !ok {
				t.Fatalf("helper exited before saying %q", want)
			}
			if line == want {
				return
			}
			if strings.HasPrefix(line, "error") {
				t.Fatalf("helper: %s (waiting for %q)", line, want)
			}
		case <-deadline:
			t.Fatalf("helper did not say %q within %v", want, within)
		}
	}
}

// silent checks that the helper prints nothing for d.
func (h *lockHelper) silent(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case line := <-h.lines:
		t.Fatalf("helper said %q too early", line)
	case <-time.After(d):
	}
}

// processLock tests (F_GETLK) for a write lock on all of path, as this
// process; it returns the holder's pid, or 0 if the file is free.
func processLock(t *testing.T, path string) int32 {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lk := unix.Flock_t{Type: unix.F_WRLCK}
	if err := unix.FcntlFlock(f.Fd(), unix.F_GETLK, &lk); err != nil {
		t.Fatal(err)
	}
	if lk.Type == unix.F_UNLCK {
		return 0
	}
	return lk.Pid
}

// waitFree waits until no process holds a lock on path.
func waitFree(t *testing.T, path string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for processLock(t, path) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s still locked after %v", path, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLockProcessesAndMounts: fcntl locks of processes on one mount are
// seen from a second mount of the cluster, a blocked F_SETLKW is woken by
// the holder's death (kill -9), a killed waiter takes nothing, and any
// close by the holder releases its locks.
func TestLockProcessesAndMounts(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	_, mnt2 := c.AddMount(t)
	path1, path2 := c.Path("db"), filepath.Join(mnt2, "db")
	if err := os.WriteFile(path1, []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}

	holder := startLockHelper(t, "hold", path1)
	holder.expect(t, "locked", 10*time.Second)
	if pid := processLock(t, path2); pid != int32(holder.cmd.Process.Pid) {
		t.Fatalf("F_GETLK on the second mount: holder pid %d, want %d", pid, holder.cmd.Process.Pid)
	}
	if pid := processLock(t, path1); pid != int32(holder.cmd.Process.Pid) {
		t.Fatalf("F_GETLK on the same mount: holder pid %d, want %d", pid, holder.cmd.Process.Pid)
	}
	// A second process on the other mount waits for it.
	waiter := startLockHelper(t, "wait", path2)
	waiter.expect(t, "waiting", 10*time.Second)
	waiter.silent(t, 500*time.Millisecond)
	// A third one waits too, and is killed while waiting.
	victim := startLockHelper(t, "wait", path1)
	victim.expect(t, "waiting", 10*time.Second)
	time.Sleep(200 * time.Millisecond)
	victim.kill()

	start := time.Now()
	holder.kill() // its file table goes: the kernel flushes with its owner
	waiter.expect(t, "locked", 5*time.Second)
	t.Logf("waiter on the other mount got the lock %v after the holder's kill -9", time.Since(start))
	if pid := processLock(t, path1); pid != int32(waiter.cmd.Process.Pid) {
		t.Fatalf("after the handover the lock is held by pid %d, want the waiter %d", pid, waiter.cmd.Process.Pid)
	}
	waiter.kill()
	waitFree(t, path1, 5*time.Second)

	// POSIX: closing any descriptor of the file releases the process's locks.
	closer := startLockHelper(t, "close-other", path1)
	closer.expect(t, "locked", 10*time.Second)
	closer.expect(t, "closed <nil>", 10*time.Second)
	if pid := processLock(t, path2); pid != 0 {
		t.Fatalf("lock of pid %d survived its close of another descriptor", pid)
	}
	if n := c.Meta.LockCount(); n != 0 {
		t.Fatalf("metaserver still holds %d locks", n)
	}
}

// waitInSyscall waits until a thread of process pid is in system call
// nr (/proc/PID/task/TID/syscall starts with its number).
func waitInSyscall(t *testing.T, pid, nr int, what string) {
	t.Helper()
	prefix := strconv.Itoa(nr) + " "
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/syscall", pid))
		for _, f := range files {
			if b, err := os.ReadFile(f); err == nil && strings.HasPrefix(string(b), prefix) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not in system call %d after 10 s", what, nr)
		}
	}
}

// deadlockTrace has two processes lock 10 bytes each and then wait for
// the other's: the second to wait must get EDEADLK, and the first gets
// its lock when the second dies. path1 and path2 name the same file
// (on cairn, through two mounts). The first must be waiting before the
// second asks: it is once it sleeps in fcntl(2) and, on cairn, once its
// mount has sent the request (lockCalls, the mount's MSetLock calls so
// far; nil for a local file) and it had a moment to arrive.
func deadlockTrace(t *testing.T, path1, path2 string, lockCalls func() uint64) []string {
	if err := os.WriteFile(path1, make([]byte, 100), 0o644); err != nil {
		t.Fatal(err)
	}
	p1 := startLockHelper(t, "deadlock", path1, "CAIRN_LOCK_FIRST=0", "CAIRN_LOCK_SECOND=10")
	p1.expect(t, "locked", 10*time.Second)
	p2 := startLockHelper(t, "deadlock", path2, "CAIRN_LOCK_FIRST=10", "CAIRN_LOCK_SECOND=0")
	p2.expect(t, "locked", 10*time.Second)
	var trace []string
	next := func(h *lockHelper, name string) {
		select {
		case line := <-h.lines:
			trace = append(trace, name+" "+line)
		case <-time.After(5 * time.Second):
			trace = append(trace, name+" still waiting")
		}
	}
	var calls uint64
	if lockCalls != nil {
		calls = lockCalls()
	}
	fmt.Fprintln(p1.stdin)
	waitInSyscall(t, p1.cmd.Process.Pid, unix.SYS_FCNTL, "the first helper's F_SETLKW")
	for deadline := time.Now().Add(10 * time.Second); lockCalls != nil && lockCalls() == calls; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first helper's mount sent no lock request in 10 s")
		}
	}
	time.Sleep(200 * time.Millisecond) // from the mount to the metaserver
	fmt.Fprintln(p2.stdin)
	next(p2, "second")
	p2.kill()
	next(p1, "first")
	return trace
}

func TestLockDeadlockDetected(t *testing.T) {
	local := filepath.Join(t.TempDir(), "f")
	want := deadlockTrace(t, local, local, nil)
	c := testcluster.Start(t, testcluster.Options{})
	_, mnt2 := c.AddMount(t)
	got := deadlockTrace(t, c.Path("f"), filepath.Join(mnt2, "f"), func() uint64 { return c.Client.MetaCalls(wire.MSetLock) })
	if !slices.Equal(got, want) {
		t.Fatalf("cairn (two mounts): %q\nlocal: %q", got, want)
	}
	t.Logf("both: %q", got)
}

// TestLockFlockAcrossMounts: flock(1) on one mount waits for a holder on
// another, gives up on its timeout (its SIGALRM interrupts the wait:
// EINTR), and gets the lock when the holder closes.
func TestLockFlockAcrossMounts(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	_, mnt2 := c.AddMount(t)
	if err := os.WriteFile(c.Path("lockfile"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(c.Path("lockfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(mnt2, "lockfile")
	run := func(args ...string) (int, time.Duration) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		start := time.Now()
		err := exec.CommandContext(ctx, "flock", args...).Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), time.Since(start)
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, time.Since(start)
	}
	if code, _ := run("-n", other, "true"); code != 1 {
		t.Fatalf("flock -n while another mount holds the lock: exit %d, want 1", code)
	}
	code, took := run("-w", "0.5", other, "true")
	if code != 1 || took > 5*time.Second {
		t.Fatalf("flock -w 0.5 while held: exit %d after %v; want 1 after about 0.5s", code, took)
	}
	// Blocking flock on the second mount is woken when the holder closes.
	done := make(chan int)
	go func() {
		code, _ := run(other, "true")
		done <- code
	}()
	time.Sleep(300 * time.Millisecond)
	select {
	case code := <-done:
		t.Fatalf("blocking flock returned %d while the lock was held", code)
	default:
	}
	f.Close()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("blocking flock: exit %d", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("blocking flock not woken by the holder's close")
	}
	// The last holder's release reaches the metaserver just after its
	// exit (FUSE_RELEASE is asynchronous).
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		code, _ := run("-n", c.Path("lockfile"), "true")
		if code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("flock -n after every holder went: exit %d", code)
		}
	}
}
