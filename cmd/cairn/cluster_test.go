package main

// Whole clusters: "cairn up" stopped by signals and started again, a
// multi-process cluster killed with SIGKILL, and scripts/cluster.sh.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ---- tree snapshots ----

// entry is everything compared about one path.
type entry struct {
	mode   uint32 // st_mode: type, permissions, setuid/setgid/sticky
	uid    uint32
	gid    uint32
	mtime  int64 // nanoseconds
	size   int64
	nlink  uint64
	target string // symlink target
	sum    string // sha256 of a regular file's bytes
	ino    uint64
	link   string // for a file with several links: the first path (sorted) sharing its inode
}

func (e entry) String() string {
	s := fmt.Sprintf("mode=%07o uid=%d gid=%d mtime=%s size=%d nlink=%d",
		e.mode, e.uid, e.gid, time.Unix(0, e.mtime).UTC().Format("2006-01-02T15:04:05.999999999"), e.size, e.nlink)
	if e.target != "" {
		s += " -> " + e.target
	}
	if e.sum != "" {
		s += " sha256=" + e.sum[:16]
	}
	if e.link != "" {
		s += " linked-with=" + e.link
	}
	return s
}

type snapshot map[string]entry

// snap walks root without following symlinks and records every entry.
func snap(t *testing.T, root string) snapshot {
	t.Helper()
	s := snapshot{}
	byIno := map[uint64][]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			return err
		}
		e := entry{mode: st.Mode, uid: st.Uid, gid: st.Gid, mtime: st.Mtim.Nano(), size: st.Size, nlink: uint64(st.Nlink), ino: st.Ino}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			if e.target, err = os.Readlink(path); err != nil {
				return err
			}
		case unix.S_IFREG:
			if e.sum, err = fileSum(path); err != nil {
				return err
			}
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR && st.Nlink > 1 {
			byIno[st.Ino] = append(byIno[st.Ino], rel)
		}
		s[rel] = e
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	for _, paths := range byIno {
		sort.Strings(paths)
		for _, p := range paths {
			e := s[p]
			e.link = paths[0]
			s[p] = e
		}
	}
	return s
}

func fileSum(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// compareOpts relaxes a comparison between different filesystems.
type compareOpts struct {
	ignoreDirSize  bool // directory sizes are the filesystem's business
	ignoreDirNlink bool
	ignoreRootTime bool
}

// compareSnaps reports every difference between want and got.
func compareSnaps(t *testing.T, what string, want, got snapshot, o compareOpts) {
	t.Helper()
	var diffs []string
	for p, w := range want {
		g, ok := got[p]
		if !ok {
			diffs = append(diffs, fmt.Sprintf("%s: missing (want %v)", p, w))
			continue
		}
		w.ino, g.ino = 0, 0
		if w.mode&unix.S_IFMT == unix.S_IFDIR {
			if o.ignoreDirSize {
				w.size, g.size = 0, 0
			}
			if o.ignoreDirNlink {
				w.nlink, g.nlink = 0, 0
			}
		}
		if p == "." && o.ignoreRootTime {
			w.mtime, g.mtime = 0, 0
		}
		if w != g {
			diffs = append(diffs, fmt.Sprintf("%s:\n\twant %v\n\tgot  %v", p, w, g))
		}
	}
	for p, g := range got {
		if _, ok := want[p]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: unexpected (%v)", p, g))
		}
	}
	if len(diffs) == 0 {
		return
	}
	sort.Strings(diffs)
	if len(diffs) > 20 {
		diffs = append(diffs[:20], fmt.Sprintf("... and %d more", len(diffs)-20))
	}
	t.Errorf("%s: %d differences:\n%s", what, len(diffs), strings.Join(diffs, "\n"))
}

// ---- test data ----

// pattern is n deterministic pseudo-random bytes.
func pattern(seed uint64, n int) []byte {
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), 0xca, 0x12})
	b := make([]byte, n)
	r.Read(b)
	return b
}

// makeFixture builds, on local disk, a tree with every kind of thing a
// filesystem must keep: sizes around and beyond a block, modes with
// setuid and sticky bits, owners, symlinks (relative, absolute,
// dangling, to a directory), hard links, a FIFO and exact mtimes.
func makeFixture(t *testing.T, root string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"a/b/c", "empty", "private", "sticky", "owned", "spaces in name/ünïcode"} {
		must(os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	files := []struct {
		path string
		size int
		mode os.FileMode
	}{
		{"zero", 0, 0o644},
		{"a/small.txt", 13, 0o644},
		{"a/b/4095", 4095, 0o600},
		{"a/b/c/1MiB+1", 1<<20 + 1, 0o644},
		{"big-9MiB", 9<<20 + 7, 0o640},
		{"tool.sh", 100, 0o755},
		{"setuid", 10, 0o755 | os.ModeSetuid},
		{"setgid", 10, 0o755 | os.ModeSetgid},
		{"readonly", 5000, 0o444},
		{"owned/theirs", 321, 0o664},
		{"spaces in name/ünïcode/fïle name", 77, 0o644},
		{"hard1", 20000, 0o644},
	}
	for i, f := range files {
		p := filepath.Join(root, f.path)
		must(os.WriteFile(p, pattern(uint64(i), f.size), 0o600))
		must(os.Chmod(p, f.mode))
	}
	must(os.Link(filepath.Join(root, "hard1"), filepath.Join(root, "a/hard2")))
	must(os.Link(filepath.Join(root, "hard1"), filepath.Join(root, "a/b/hard3")))
	must(os.Link(filepath.Join(root, "tool.sh"), filepath.Join(root, "tool-link.sh")))
	must(os.Symlink("a/b/c/1MiB+1", filepath.Join(root, "rel-link")))
	must(os.Symlink("/etc/hostname", filepath.Join(root, "abs-link")))
	must(os.Symlink("does/not/exist", filepath.Join(root, "dangling")))
	must(os.Symlink("a/b", filepath.Join(root, "dir-link")))
	must(os.Symlink("../../zero", filepath.Join(root, "a/b/up-link")))
	must(unix.Mkfifo(filepath.Join(root, "fifo"), 0o640))
	must(os.Chmod(filepath.Join(root, "private"), 0o700))
	must(os.Chmod(filepath.Join(root, "sticky"), 0o1777))
	must(os.Lchown(filepath.Join(root, "owned/theirs"), 1234, 5678))
	must(os.Lchown(filepath.Join(root, "owned"), 1234, 5678))
	must(os.Lchown(filepath.Join(root, "dangling"), 4321, 8765))
	// mtimes last, deepest first so a directory's stays put.
	var paths []string
	filepath.WalkDir(root, func(p string, _ fs.DirEntry, _ error) error { paths = append(paths, p); return nil })
	for i := len(paths) - 1; i >= 0; i-- {
		ts := time.Date(2001+i%20, time.Month(1+i%12), 1+i%28, i%24, i%60, i%60, 123456789*(i%8), time.UTC)
		tv := []unix.Timespec{unix.NsecToTimespec(ts.UnixNano()), unix.NsecToTimespec(ts.UnixNano())}
		must(unix.UtimesNanoAt(unix.AT_FDCWD, paths[i], tv, unix.AT_SYMLINK_NOFOLLOW))
	}
}

// tool runs a tool to completion within timeout.
func tool(t *testing.T, dir string, timeout time.Duration, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "LC_ALL=C")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s %s (in %s): %v\n%s", name, strings.Join(args, " "), dir, err, out.String())
		}
	case <-time.After(timeout):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%s %s (in %s): still running after %v (killed)\n%s", name, strings.Join(args, " "), dir, timeout, out.String())
	}
	return out.String()
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	abs, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// ---- cairn up: write, stop by signal, start again ----

func TestUpLifecycle(t *testing.T) {
	t.Parallel()
	needFUSE(t)
	tmp := t.TempDir()
	data := filepath.Join(tmp, "data")
	mnt := mountDir(t)
	fixture := filepath.Join(tmp, "fixture")
	makeFixture(t, fixture)
	want := snap(t, fixture)

	up := startUp(t, "up 1", data, mnt)
	checkSetMtime(t, mnt)

	// Real tools writing real trees.
	tool(t, tmp, 60*time.Second, "cp", "-a", fixture, filepath.Join(mnt, "cp"))
	compareSnaps(t, "cp -a copy vs the original", want, snap(t, filepath.Join(mnt, "cp")), compareOpts{ignoreDirSize: true})
	tarball := filepath.Join(tmp, "fixture.tar")
	tool(t, fixture, 60*time.Second, "tar", "--format=posix", "--numeric-owner", "-cf", tarball, ".")
	if err := os.Mkdir(filepath.Join(mnt, "tar"), 0o755); err != nil {
		t.Fatal(err)
	}
	tool(t, tmp, 60*time.Second, "tar", "--numeric-owner", "-xpf", tarball, "-C", filepath.Join(mnt, "tar"))
	compareSnaps(t, "tar x vs the original", want, snap(t, filepath.Join(mnt, "tar")), compareOpts{ignoreDirSize: true})
	haveGit := false
	if _, err := exec.LookPath("git"); err == nil {
		haveGit = true
		repo := filepath.Join(mnt, "repo")
		tool(t, mnt, 30*time.Second, "git", "init", "-q", repo)
		tool(t, tmp, 30*time.Second, "cp", "-a", fixture+"/a", repo+"/a")
		srcs, _ := filepath.Glob(filepath.Join(mustAbs(t, "."), "*.go"))
		tool(t, tmp, 30*time.Second, "cp", append(srcs, repo)...)
		tool(t, repo, 30*time.Second, "git", "add", "-A")
		tool(t, repo, 30*time.Second, "git", "-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-q", "-m", "first")
		if err := os.WriteFile(filepath.Join(repo, "main.go"), []byte("package main\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		tool(t, repo, 30*time.Second, "git", "-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-q", "-am", "second")
		tool(t, repo, 30*time.Second, "git", "status", "--porcelain") // refreshes the index now, not after the restart
	}

	// Open files at the moment of the signal: one still being written by
	// the test (never closed), one read by another process whose working
	// directory is also inside the mount.
	unclosed, err := os.Create(filepath.Join(mnt, "unclosed"))
	if err != nil {
		t.Fatal(err)
	}
	defer unclosed.Close()
	if _, err := unclosed.Write(pattern(99, 3<<20+5)); err != nil {
		t.Fatal(err)
	}
	held, err := os.Open(filepath.Join(mnt, "cp", "big-9MiB"))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	sleeper := exec.Command("sleep", "1000")
	sleeper.Stdin = held
	sleeper.Dir = filepath.Join(mnt, "tar", "a", "b")
	sleeper.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleeper.Process.Kill(); sleeper.Wait() })

	before := snap(t, mnt)
	stopUp(t, up, mnt, syscall.SIGINT)
	sleeper.Process.Kill()
	sleeper.Wait()
	unclosed.Close()
	held.Close()

	// Everything is back, byte for byte.
	up = startUp(t, "up 2", data, mnt)
	compareSnaps(t, "after SIGINT and a restart", before, snap(t, mnt), compareOpts{})
	if haveGit {
		repo := filepath.Join(mnt, "repo")
		tool(t, repo, 60*time.Second, "git", "fsck", "--strict", "--no-progress")
		if out := tool(t, repo, 30*time.Second, "git", "status", "--porcelain"); out != "" {
			t.Errorf("git status after the restart is not clean:\n%s", out)
		}
	}
	// Change a few things, then SIGTERM.
	if err := os.WriteFile(filepath.Join(mnt, "after-restart"), pattern(7, 100000), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(mnt, "cp", "zero"), filepath.Join(mnt, "cp", "a", "zero-moved")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(mnt, "tar", "a")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(mnt, "unclosed"), 0o4711); err != nil {
		t.Fatal(err)
	}
	before = snap(t, mnt)
	stopUp(t, up, mnt, syscall.SIGTERM)

	up = startUp(t, "up 3", data, mnt)
	compareSnaps(t, "after SIGTERM and a restart", before, snap(t, mnt), compareOpts{})
	stopUp(t, up, mnt, syscall.SIGINT)
}

// checkSetMtime: times set on a file must stick, also when they are set
// while the file still has writes not yet flushed, as cp -a, tar x and
// rsync -t do (write, futimens, close).
func checkSetMtime(t *testing.T, mnt string) {
	want := time.Date(2001, 1, 1, 0, 0, 0, 123456789, time.UTC)
	ts := []unix.Timespec{unix.NsecToTimespec(want.UnixNano()), unix.NsecToTimespec(want.UnixNano())}
	mtime := func(p string) time.Time {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		return time.Unix(0, st.Mtim.Nano()).UTC()
	}
	// Set after close.
	closed := filepath.Join(mnt, "mtime-after-close")
	if err := os.WriteFile(closed, []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, closed, ts, 0); err != nil {
		t.Fatal(err)
	}
	if got := mtime(closed); !got.Equal(want) {
		t.Errorf("write, close, utimensat: mtime %v, want %v", got, want)
	}
	// Set on the open file after writing, then closed.
	open := filepath.Join(mnt, "mtime-before-close")
	f, err := os.Create(open)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("data")); err != nil {
		t.Fatal(err)
	}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, open, ts, 0); err != nil {
		t.Fatal(err)
	}
	if got := mtime(open); !got.Equal(want) {
		t.Errorf("write, utimensat (file still open): mtime %v, want %v", got, want)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := mtime(open); !got.Equal(want) {
		t.Errorf("write, utimensat, close: mtime %v, want %v", got, want)
	}
}

// ---- a cluster of separate processes, killed with SIGKILL ----

type procCluster struct {
	dir, mnt, addr, ca string
	meta, mount        *proc
	chunks             [3]*proc
}

func (c *procCluster) start(t *testing.T, round int) {
	t.Helper()
	c.meta = startCairn(t, fmt.Sprintf("meta (round %d)", round), "meta", "--data", filepath.Join(c.dir, "meta"), "--listen", c.addr)
	c.meta.waitStderr(t, "metaserver listening on "+c.addr, 15*time.Second)
	for i := range c.chunks {
		c.chunks[i] = startCairn(t, fmt.Sprintf("chunk%d (round %d)", i+1, round),
			"chunk", "--data", filepath.Join(c.dir, fmt.Sprintf("chunk%d", i+1)), "--meta", c.addr, "--ca", c.ca)
	}
	for _, p := range c.chunks {
		p.waitStderr(t, "registered with "+c.addr, 20*time.Second)
	}
	c.mount = startCairn(t, fmt.Sprintf("mount (round %d)", round), "mount", "--meta", c.addr, "--ca", c.ca, c.mnt)
	waitMounted(t, c.mount, c.mnt, 30*time.Second)
}

func (c *procCluster) all() []*proc { return append([]*proc{c.meta, c.mount}, c.chunks[:]...) }

func TestProcessClusterSurvivesKill9(t *testing.T) {
	t.Parallel()
	needFUSE(t)
	tmp := t.TempDir()
	c := &procCluster{dir: filepath.Join(tmp, "cluster"), mnt: mountDir(t), addr: fmt.Sprintf("127.0.0.1:%d", freeUDPPort(t))}
	c.ca = filepath.Join(c.dir, "meta", "cluster.pem")
	c.start(t, 1)

	// Files written and closed, in several ways.
	want := map[string]string{} // path in the mount -> sha256
	write := func(name string, data []byte) {
		t.Helper()
		p := filepath.Join(c.mnt, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		want[name] = sumHex(data)
	}
	write("big-20MiB", pattern(1, 20<<20+3))
	write("exactly-8MiB", pattern(2, 8<<20))
	write("8MiB+1", pattern(3, 8<<20+1))
	write("empty", nil)
	for i := range 20 {
		write(fmt.Sprintf("many/f%02d", i), pattern(uint64(100+i), 1000*i))
	}
	write("rewritten", pattern(4, 5<<20))
	write("rewritten", []byte("short now\n")) // truncated and rewritten
	write("appended", pattern(5, 1<<20))
	f, err := os.OpenFile(filepath.Join(c.mnt, "appended"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	tail := pattern(6, 1<<20+17)
	if _, err := f.Write(tail); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	want["appended"] = sumHex(append(pattern(5, 1<<20), tail...))
	local := filepath.Join(tmp, "local-12MiB")
	if err := os.WriteFile(local, pattern(7, 12<<20+1), 0o644); err != nil {
		t.Fatal(err)
	}
	tool(t, tmp, 60*time.Second, "cp", local, filepath.Join(c.mnt, "copied-by-cp"))
	want["copied-by-cp"] = sumHex(pattern(7, 12<<20+1))
	checkSums(t, c.mnt, want, "before the kill")

	// Kill everything at once, the mount too.
	for _, p := range c.all() {
		p.cmd.Process.Kill()
	}
	for _, p := range c.all() {
		if code := p.wait(t, 10*time.Second); code != -1 {
			t.Errorf("%s: exit status %d after SIGKILL", p.name, code)
		}
	}
	// The dead mount is still there; mounting over it is refused, saying how to clear it.
	r := cairn(t, 20*time.Second, "mount", "--meta", c.addr, "--ca", c.ca, c.mnt)
	// Within the kernel's attribute cache time (1s) the dead mount still
	// stats fine and is reported as in use; after it, as stale, with the
	// umount command to clear it. Either way: exit 1, one line, the path.
	wantError(t, r, "mount", c.mnt)
	if !strings.Contains(r.stderr, "umount") && !strings.Contains(r.stderr, "already in use") {
		t.Errorf("mount on a dead mount: the error says neither that it is in use nor how to clear it: %s", r.stderr)
	}
	if err := syscall.Unmount(c.mnt, syscall.MNT_DETACH); err != nil {
		t.Fatalf("umount -l %s: %v", c.mnt, err)
	}
	assertNotMounted(t, c.mnt)

	c.start(t, 2)
	checkSums(t, c.mnt, want, "after kill -9 of every process and a restart")
	r = cairn(t, 20*time.Second, "status", "--meta", c.addr, "--ca", c.ca)
	if r.code != 0 || strings.Count(r.stdout, "  up  ") != 3 {
		t.Errorf("status after the restart: exit %d, want 3 chunkservers up:\n%s%s", r.code, r.stdout, r.stderr)
	}

	// A clean stop: the mount first, then the servers; all exit 0.
	stopUp(t, c.mount, c.mnt, syscall.SIGTERM)
	for _, p := range append(c.chunks[:], c.meta) {
		p.signal(t, syscall.SIGTERM)
		if code := p.wait(t, 30*time.Second); code != 0 {
			t.Errorf("%s: exit status %d after SIGTERM, want 0; stderr:\n%s", p.name, code, p.stderr.String())
		}
	}
}

// sumHex is the sha256 of data as checkSums compares it.
func sumHex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// writeTimed writes data to name under mnt, notes its sum in want, and
// returns how long the write (with its close) took.
func writeTimed(t *testing.T, mnt, name string, data []byte, want map[string]string) time.Duration {
	t.Helper()
	start := time.Now()
	if err := os.WriteFile(filepath.Join(mnt, name), data, 0o644); err != nil {
		t.Fatalf("write %s: %v", name, err)
	}
	want[name] = sumHex(data)
	return time.Since(start)
}

func checkSums(t *testing.T, root string, want map[string]string, when string) {
	t.Helper()
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		got, err := fileSum(filepath.Join(root, n))
		if err != nil {
			t.Errorf("%s: %v", when, err)
		} else if got != want[n] {
			t.Errorf("%s: %s has sha256 %s, want %s", when, n, got[:16], want[n][:16])
		}
	}
}

// ---- scripts/cluster.sh ----

func TestClusterScript(t *testing.T) {
	t.Parallel()
	needFUSE(t)
	script, err := filepath.Abs("../../scripts/cluster.sh")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(script); err != nil {
		t.Skipf("no script: %v", err)
	}
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "cluster")
	mnt := mountDir(t)
	port := freeUDPPort(t)
	sh := func(timeout time.Duration, args ...string) result {
		t.Helper()
		return scriptRun(t, script, port, timeout, args...)
	}
	// Whatever the script started is killed by the PIDs it recorded.
	t.Cleanup(func() {
		pids, _ := filepath.Glob(filepath.Join(dir, "pids", "*.pid"))
		for _, f := range pids {
			b, _ := os.ReadFile(f)
			n, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil || n <= 1 {
				continue
			}
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", n))
			if strings.Contains(string(cmdline), filepath.Join(dir, "cairn")) {
				t.Logf("killing %s (PID %d) left by the script", filepath.Base(f), n)
				syscall.Kill(n, syscall.SIGKILL)
			}
		}
	})

	if r := sh(10*time.Second, "--help"); r.code != 0 || !strings.Contains(r.stdout, "Usage:") {
		t.Errorf("cluster.sh --help: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := sh(10*time.Second, "launch"); r.code != 2 || !strings.Contains(r.stderr, "launch") {
		t.Errorf("cluster.sh launch: exit %d, want 2\n%s", r.code, r.stderr)
	}
	if r := sh(10*time.Second, "stop", filepath.Join(tmp, "nothing-here")); r.code != 1 {
		t.Errorf("cluster.sh stop on no cluster: exit %d, want 1\n%s", r.code, r.stderr)
	}

	r := sh(120*time.Second, "start", dir, mnt)
	if r.code != 0 {
		t.Fatalf("cluster.sh start: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, w := range []string{mnt, fmt.Sprintf("127.0.0.1:%d", port), "stop " + dir} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("cluster.sh start does not say %q:\n%s", w, r.stdout)
		}
	}
	if !mounted(mnt) {
		t.Fatalf("cluster.sh start returned but %s is not mounted", mnt)
	}
	for _, name := range []string{"meta", "chunk1", "chunk2", "chunk3", "mount"} {
		for _, f := range []string{"pids/" + name + ".pid", "logs/" + name + ".log"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Errorf("after start: %v", err)
			}
		}
	}
	data := pattern(11, 9<<20)
	if err := os.WriteFile(filepath.Join(mnt, "f"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := sh(30*time.Second, "status", dir); r.code != 0 || strings.Count(r.stdout, "  up  ") != 3 {
		t.Errorf("cluster.sh status: exit %d, want 3 chunkservers up:\n%s%s", r.code, r.stdout, r.stderr)
	}
	// A second start on a running cluster is refused, leaving it alone.
	if r := sh(30*time.Second, "start", dir, mnt); r.code == 0 || !strings.Contains(r.stderr, "already") {
		t.Errorf("second cluster.sh start: exit %d, want a refusal\n%s", r.code, r.stderr)
	}

	r = sh(150*time.Second, "stop", dir)
	if r.code != 0 {
		t.Errorf("cluster.sh stop: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	assertNotMounted(t, mnt)
	if pids, _ := filepath.Glob(filepath.Join(dir, "pids", "*.pid")); len(pids) > 0 {
		t.Errorf("PID files left after stop: %v", pids)
	}

	// Started again, the data is there.
	if r := sh(120*time.Second, "start", dir, mnt); r.code != 0 {
		t.Fatalf("cluster.sh start (again): exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if got, err := os.ReadFile(filepath.Join(mnt, "f")); err != nil || sha256.Sum256(got) != sha256.Sum256(data) {
		t.Errorf("after a restart by the script: err=%v, %d bytes, same=%v", err, len(got), err == nil && sha256.Sum256(got) == sha256.Sum256(data))
	}
	// The mount process dies; stop still stops everything and clears the
	// dead mount.
	b, err := os.ReadFile(filepath.Join(dir, "pids", "mount.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("mount.pid: %v", err)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	waitFor(t, 10*time.Second, "the killed mount process to go", func() bool {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		return err != nil || strings.Contains(string(st), ") Z ") // gone, or a zombie
	})
	r = sh(150*time.Second, "stop", dir)
	if r.code != 0 || !strings.Contains(r.stdout, "dead") {
		t.Errorf("cluster.sh stop after the mount was killed: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	assertNotMounted(t, mnt)
	if pids, _ := filepath.Glob(filepath.Join(dir, "pids", "*.pid")); len(pids) > 0 {
		t.Errorf("PID files left after stop: %v", pids)
	}
}

func scriptRun(t *testing.T, script string, port int, timeout time.Duration, args ...string) result {
	t.Helper()
	cmd := exec.Command("bash", append([]string{script}, args...)...)
	cmd.Env = append(os.Environ(), fmt.Sprintf("CAIRN_META_PORT=%d", port))
	var stdout, stderr syncBuf
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		t.Fatalf("cluster.sh %s: still running after %v\n%s%s", strings.Join(args, " "), timeout, stdout.String(), stderr.String())
	}
	return result{stdout: stdout.String(), stderr: stderr.String(), code: cmd.ProcessState.ExitCode()}
}
