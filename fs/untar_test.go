package fs_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-fs/cairn/internal/block"
	"github.com/cairn-fs/cairn/internal/testcluster"
	"github.com/cairn-fs/cairn/internal/wire"
	"golang.org/x/sys/unix"
)

// tarStyleFile does what GNU tar x does for each regular file: create,
// write, futimens, fchown, fchmod, close; then, when more is set, one
// more write after the futimens (which must move mtime to now again).
func tarStyleFile(path string, data []byte, mtime time.Time, more bool) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	// Closed once: a second close could close a descriptor that another
	// goroutine of the test process (the in-process cluster) just opened.
	err = tarStyleSteps(fd, data, mtime, more)
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	return err
}

func tarStyleSteps(fd int, data []byte, mtime time.Time, more bool) error {
	if _, err := unix.Write(fd, data); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, unix.NsecToTimespec(mtime.UnixNano())}
	if err := unix.UtimesNanoAt(fd, "", ts, unix.AT_EMPTY_PATH); err != nil {
		return fmt.Errorf("futimens: %w", err)
	}
	if more {
		if _, err := unix.Write(fd, []byte("tail")); err != nil {
			return fmt.Errorf("write after futimens: %w", err)
		}
	}
	if err := unix.Fchown(fd, 0, 0); err != nil {
		return fmt.Errorf("fchown: %w", err)
	}
	if err := unix.Fchmod(fd, 0o644); err != nil {
		return fmt.Errorf("fchmod: %w", err)
	}
	return nil
}

// TestTarStyleWritesKeepTheirTimes checks that the time futimens sets on
// a file with writes not yet committed is the one the file keeps once
// they are (here, seen from a second mount after close, and after a
// cluster restart), and that a write after it moves mtime to now, as on
// the local disk.
func TestTarStyleWritesKeepTheirTimes(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Chunkservers: 1, Replicas: 1})
	_, other := c.AddMount(t)
	local := t.TempDir()
	past := time.Date(2020, 5, 17, 10, 11, 12, 13, time.UTC)
	future := time.Now().Add(100 * time.Hour).Truncate(time.Second)
	type want struct {
		data  []byte
		mtime time.Time // zero: later than the start of the test
	}
	files := map[string]want{}
	start := time.Now().Add(-time.Second)
	for i := range 20 {
		name := fmt.Sprintf("f%02d", i)
		data := bytes.Repeat([]byte{byte('a' + i)}, 100+i*700)
		more := i%5 == 4
		mtime := past
		if i%3 == 1 {
			mtime = future // ctime stays now: the time of the futimens
		}
		for _, dir := range []string{c.MountDir, local} {
			if err := tarStyleFile(filepath.Join(dir, name), data, mtime, more); err != nil {
				t.Fatalf("%s in %s: %v", name, dir, err)
			}
		}
		w := want{data: data, mtime: mtime}
		if more {
			w = want{data: append(bytes.Clone(data), "tail"...)}
		}
		files[name] = w
	}
	check := func(where string) {
		t.Helper()
		end := time.Now().Add(time.Second)
		for name, w := range files {
			p := filepath.Join(where, name)
			got, err := os.ReadFile(p)
			if err != nil || !bytes.Equal(got, w.data) {
				t.Fatalf("%s: read %d bytes, err %v; want %d bytes", p, len(got), err, len(w.data))
			}
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode() != 0o644 {
				t.Errorf("%s: mode %v, want 0644", p, st.Mode())
			}
			var sys unix.Stat_t
			if err := unix.Stat(p, &sys); err != nil {
				t.Fatal(err)
			}
			if ctime := time.Unix(sys.Ctim.Unix()); ctime.Before(start) || ctime.After(end) {
				t.Errorf("%s: ctime %v, want the time of the test (%v to %v)", p, ctime, start, end)
			}
			switch {
			case w.mtime.IsZero() && st.ModTime().Before(start):
				t.Errorf("%s: mtime %v after a write that followed futimens; want now", p, st.ModTime())
			case !w.mtime.IsZero() && !st.ModTime().Equal(w.mtime):
				t.Errorf("%s: mtime %v, want %v set by futimens", p, st.ModTime(), w.mtime)
			}
		}
	}
	check(local)
	check(c.MountDir)
	check(other)
	c.Restart(t)
	check(c.MountDir)
}

// waitReleased waits until the mount has handled the RELEASE of the file
// at path (relative to the mount), which the kernel sends after close(2)
// returns. A RELEASE counts as a change: one still running when the next
// file's SETATTR begins (it comes late when the machine is busy) keeps
// that SETATTR's reply from answering the GETATTR before the fchown, which
// then costs a round trip that tar x pays only under load; one landing
// after a listing keeps that listing from answering the next.
func waitReleased(t *testing.T, c *testcluster.Cluster, path string) {
	t.Helper()
	ino := uint64(1)
	for _, name := range strings.Split(path, "/") {
		attr, err := c.Client.Lookup(context.Background(), ino, name)
		if err != nil {
			t.Fatal(err)
		}
		ino = attr.Ino
	}
	for deadline := time.Now().Add(10 * time.Second); c.Client.IsOpen(ino); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s still open on the mount 10 s after its close", path)
		}
	}
}

// TestTarStyleFileRoundTrips: the GETATTR the kernel sends before each
// fchown (to refresh the mode whose set-id bits a chown clears) is
// answered with what the futimens just before it returned, not by the
// metaserver; but a GETATTR after a write that followed the futimens
// is not, since the answer would not show the write.
func TestTarStyleFileRoundTrips(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Chunkservers: 1, Replicas: 1})
	getattrs := c.Client.MetaCalls(wire.MGetAttr)
	const files = 10
	for i := range files {
		name := fmt.Sprint(i)
		if err := tarStyleFile(filepath.Join(c.MountDir, name), []byte("data"), time.Unix(1e9, 0), false); err != nil {
			t.Fatal(err)
		}
		waitReleased(t, c, name)
	}
	if n := c.Client.MetaCalls(wire.MGetAttr) - getattrs; n != 0 {
		t.Fatalf("%d tar-style files cost %d GETATTR calls to the metaserver, want 0", files, n)
	}

	fd, err := unix.Open(filepath.Join(c.MountDir, "grown"), unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, []byte("first")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Futimes(fd, []unix.Timeval{{Sec: 1e9}, {Sec: 1e9}}); err != nil {
		t.Fatal(err)
	}
	if _, err := unix.Write(fd, []byte(" and more")); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	if st.Size != int64(len("first and more")) {
		t.Fatalf("size %d after a write that followed futimens, want %d", st.Size, len("first and more"))
	}
}

// storedOn reports whether chunkserver i holds block id on its disk.
func storedOn(c *testcluster.Cluster, i int, id block.ID) bool {
	h := id.String()
	_, err := os.Stat(filepath.Join(c.ChunkDir(i), "blocks", h[:2], h))
	return err == nil
}

// waitStored waits until chunkserver i holds block id, and fails the
// test if it does not within 10 s.
func waitStored(t *testing.T, c *testcluster.Cluster, i int, id block.ID, while string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !storedOn(c, i, id); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("block %s not on the chunkserver 10 s after %s", id.Short(), while)
		}
	}
}

// TestTarStyleUploadStartsAtSetAttr: the futimens that follows a file's
// writes starts their upload (flush-behind), so that the chunkserver's
// fsync overlaps the attribute changes instead of starting at close: the
// block is stored while the file is still open, and nothing is committed
// before close (or fsync). A write after the upload goes into a block of
// its own, and close commits both, in order: another mount sees every
// byte, with the time futimens set only if no write followed it.
func TestTarStyleUploadStartsAtSetAttr(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Chunkservers: 1, Replicas: 1})
	_, other := c.AddMount(t)
	set := time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, tc := range []struct {
		name          string
		fsync, append bool
	}{{name: "plain"}, {name: "fsync", fsync: true}, {name: "append", append: true}} {
		t.Run(tc.name, func(t *testing.T) {
			data := randomBytes(uint64(len(tc.name)), 3000)
			fd, err := unix.Open(filepath.Join(c.MountDir, tc.name), unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			closed := false
			defer func() {
				if !closed {
					unix.Close(fd)
				}
			}()
			if _, err := unix.Write(fd, data); err != nil {
				t.Fatal(err)
			}
			commits := c.Client.MetaCalls(wire.MCommit)
			ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, unix.NsecToTimespec(set.UnixNano())}
			if err := unix.UtimesNanoAt(fd, "", ts, unix.AT_EMPTY_PATH); err != nil {
				t.Fatal(err)
			}
			waitStored(t, c, 0, block.Sum(data), "futimens, with the file still open")
			if n := c.Client.MetaCalls(wire.MCommit) - commits; n != 0 {
				t.Fatalf("%d commits before close; the upload must not commit", n)
			}
			want, wantCommits := data, uint64(1)
			if tc.fsync {
				if err := unix.Fsync(fd); err != nil {
					t.Fatal(err)
				}
				if got, err := os.ReadFile(filepath.Join(other, tc.name)); err != nil || !bytes.Equal(got, data) {
					t.Fatalf("another mount read %d bytes (err %v) after fsync, want the %d written", len(got), err, len(data))
				}
			}
			if tc.append {
				tail := randomBytes(99, 500)
				if _, err := unix.Write(fd, tail); err != nil {
					t.Fatal(err)
				}
				want = append(bytes.Clone(data), tail...)
			}
			closed = true
			if err := unix.Close(fd); err != nil {
				t.Fatal(err)
			}
			if n := c.Client.MetaCalls(wire.MCommit) - commits; n != wantCommits {
				t.Fatalf("%d commits by close, want %d", n, wantCommits)
			}
			p := filepath.Join(other, tc.name)
			if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("another mount read %d bytes (err %v) after close, want the %d written", len(got), err, len(want))
			}
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if keeps := !tc.append; st.ModTime().Equal(set) != keeps {
				t.Fatalf("mtime %v after close; futimens set %v, and a write after it should move it: %v", st.ModTime(), set, tc.append)
			}
		})
	}
}
