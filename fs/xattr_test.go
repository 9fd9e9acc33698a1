package fs_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-fs/cairn/client"
	"github.com/cairn-fs/cairn/internal/testcluster"
	"github.com/cairn-fs/cairn/internal/wire"
	"golang.org/x/sys/unix"
)

// xattrScript is a list of extended attribute operations run on cairn
// and on the local disk (ext4 under /tmp); every result is compared.
// Each step returns a line describing what happened.
func xattrScript(dir string) []string {
	var out []string
	p := func(name string) string { return filepath.Join(dir, name) }
	say := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	errStr := func(err error) string {
		if err == nil {
			return "ok"
		}
		return unix.ErrnoName(modelErrno(err))
	}
	get := func(path, name string, size int) string {
		buf := make([]byte, size)
		n, err := unix.Lgetxattr(path, name, buf)
		if err != nil {
			return errStr(err)
		}
		if size == 0 {
			return fmt.Sprintf("size %d", n)
		}
		return fmt.Sprintf("%q", buf[:n])
	}
	list := func(path string) string {
		n, err := unix.Llistxattr(path, nil)
		if err != nil {
			return errStr(err)
		}
		buf := make([]byte, n)
		m, err := unix.Llistxattr(path, buf)
		if err != nil {
			return errStr(err)
		}
		names := strings.Split(strings.TrimSuffix(string(buf[:m]), "\x00"), "\x00")
		// Keep what both file systems can have: ext4 may add security.* labels.
		var user []string // in name order: the order of a listing is the file system's

		for _, name := range names {
			if strings.HasPrefix(name, "user.") || strings.HasPrefix(name, "trusted.") {
				user = append(user, name)
			}
		}
		sort.Strings(user)
		if len(buf) > 1 {
			_, small := unix.Llistxattr(path, buf[:1])
			return fmt.Sprintf("%v (size %d; 1-byte buffer: %s)", user, n, errStr(small))
		}
		return fmt.Sprintf("%v", user)
	}
	ctime := func(path string) time.Time {
		var st unix.Stat_t
		unix.Lstat(path, &st)
		return time.Unix(st.Ctim.Unix())
	}

	os.WriteFile(p("f"), []byte("x"), 0o644)
	os.Mkdir(p("d"), 0o755)
	os.Symlink("f", p("l"))
	unix.Mkfifo(p("fifo"), 0o644)

	say("get missing: %s", get(p("f"), "user.a", 10))
	say("list empty: %s", list(p("f")))
	before := ctime(p("f"))
	time.Sleep(20 * time.Millisecond) // past a tick of the kernel's coarse clock
	say("set: %s", errStr(unix.Lsetxattr(p("f"), "user.a", []byte("hello"), 0)))
	say("ctime moved on set: %v", ctime(p("f")).After(before))
	say("get: %s", get(p("f"), "user.a", 100))
	say("size query: %s", get(p("f"), "user.a", 0))
	say("small buffer: %s", get(p("f"), "user.a", 2))
	say("exact buffer: %s", get(p("f"), "user.a", 5))
	say("create over existing: %s", errStr(unix.Lsetxattr(p("f"), "user.a", []byte("x"), unix.XATTR_CREATE)))
	say("replace missing: %s", errStr(unix.Lsetxattr(p("f"), "user.b", []byte("x"), unix.XATTR_REPLACE)))
	say("replace existing: %s", errStr(unix.Lsetxattr(p("f"), "user.a", []byte("bye"), unix.XATTR_REPLACE)))
	say("create and replace, existing: %s", errStr(unix.Lsetxattr(p("f"), "user.a", []byte("x"), unix.XATTR_CREATE|unix.XATTR_REPLACE)))
	say("create and replace, missing: %s", errStr(unix.Lsetxattr(p("f"), "user.b", []byte("x"), unix.XATTR_CREATE|unix.XATTR_REPLACE)))
	say("create new: %s", errStr(unix.Lsetxattr(p("f"), "user.b", nil, unix.XATTR_CREATE)))
	say("empty value: %s / %s", get(p("f"), "user.b", 10), get(p("f"), "user.b", 0))
	say("binary value: %s", errStr(unix.Lsetxattr(p("f"), "user.bin", []byte{0, 1, 0, 255}, 0)))
	say("get binary: %s", get(p("f"), "user.bin", 10))
	say("trusted: %s %s", errStr(unix.Lsetxattr(p("f"), "trusted.t", []byte("root only"), 0)), get(p("f"), "trusted.t", 20))
	say("list: %s", list(p("f")))
	say("name of 255: %s", errStr(unix.Lsetxattr(p("f"), "user."+strings.Repeat("n", 250), []byte("v"), 0)))
	say("get name of 255: %s", get(p("f"), "user."+strings.Repeat("n", 250), 10))
	say("name of 256: %s", errStr(unix.Lsetxattr(p("f"), "user."+strings.Repeat("n", 251), []byte("v"), 0)))
	say("get name of 256: %s", get(p("f"), "user."+strings.Repeat("n", 251), 10))
	say("value of 65537: %s", errStr(unix.Lsetxattr(p("f"), "user.big", make([]byte, 65537), 0)))
	say("no namespace: %s", errStr(unix.Lsetxattr(p("f"), "nonamespace", []byte("v"), 0)))
	say("other system.*: %s", errStr(unix.Lsetxattr(p("f"), "system.other", []byte("v"), 0)))
	say("bare user.: %s", errStr(unix.Lsetxattr(p("f"), "user.", []byte("v"), 0)))
	say("get no namespace: %s", get(p("f"), "nonamespace", 10))
	say("remove: %s", errStr(unix.Lremovexattr(p("f"), "user.a")))
	say("remove again: %s", errStr(unix.Lremovexattr(p("f"), "user.a")))
	say("get removed: %s", get(p("f"), "user.a", 10))
	say("list after remove: %s", list(p("f")))
	say("dir set: %s %s", errStr(unix.Lsetxattr(p("d"), "user.d", []byte("dir"), 0)), get(p("d"), "user.d", 10))
	say("symlink user.*: %s", errStr(unix.Lsetxattr(p("l"), "user.s", []byte("v"), 0)))
	say("symlink get user.*: %s", get(p("l"), "user.s", 10))
	say("symlink trusted.*: %s %s", errStr(unix.Lsetxattr(p("l"), "trusted.s", []byte("v"), 0)), get(p("l"), "trusted.s", 10))
	say("through symlink: %s", errStr(unix.Setxattr(p("l"), "user.via", []byte("v"), 0)))
	say("target got it: %s", get(p("f"), "user.via", 10))
	say("fifo user.*: %s", errStr(unix.Lsetxattr(p("fifo"), "user.x", []byte("v"), 0)))
	say("fifo trusted.*: %s %s", errStr(unix.Lsetxattr(p("fifo"), "trusted.x", []byte("v"), 0)), get(p("fifo"), "trusted.x", 10))
	// File capabilities (VFS_CAP_REVISION_2: cap_net_raw permitted); a
	// write drops them, as it drops setuid.
	vfsCap := []byte{1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	os.WriteFile(p("prog"), []byte("#!/bin/sh\n"), 0o755)
	say("set capability: %s", errStr(unix.Lsetxattr(p("prog"), "security.capability", vfsCap, 0)))
	say("get capability: %s", get(p("prog"), "security.capability", 100))
	if f, err := os.OpenFile(p("prog"), os.O_WRONLY|os.O_APPEND, 0); err == nil {
		f.Write([]byte("true\n"))
		f.Close()
	}
	say("capability after a write: %s", get(p("prog"), "security.capability", 100))
	say("missing file: %s", errStr(unix.Lsetxattr(p("nope"), "user.x", []byte("v"), 0)))
	fd, err := unix.Open(p("f"), unix.O_RDONLY, 0)
	if err == nil {
		say("fset on O_RDONLY fd: %s", errStr(unix.Fsetxattr(fd, "user.fd", []byte("v"), 0)))
		buf := make([]byte, 10)
		n, err := unix.Fgetxattr(fd, "user.fd", buf)
		say("fget: %s %q", errStr(err), buf[:max(n, 0)])
		unix.Close(fd)
	}
	return out
}

func TestXattrMatchesLocal(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	local := t.TempDir()
	requireUserXattrs(t, local)
	cairn := c.Path("x")
	if err := os.Mkdir(cairn, 0o755); err != nil {
		t.Fatal(err)
	}
	got, want := xattrScript(cairn), xattrScript(local)
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			t.Errorf("cairn: %s\n       local: %s", g, w)
		} else {
			t.Logf("both: %s", g)
		}
	}
}

// requireUserXattrs fails the test when the reference directory cannot
// hold user xattrs: a comparison with it would mean nothing.
func requireUserXattrs(t *testing.T, dir string) {
	t.Helper()
	if err := unix.Setxattr(dir, "user.probe", []byte("1"), 0); err != nil {
		t.Fatalf("the local reference %s has no user xattrs (%v): the comparison needs ext4 or tmpfs with user xattrs", dir, err)
	}
	unix.Removexattr(dir, "user.probe")
}

// TestXattrLimitsAndRestart checks what ext4 cannot show (a 64 KiB value
// needs its ea_inode feature) and that xattrs survive a restart and go
// with their inode.
func TestXattrLimitsAndRestart(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	f := c.Path("f")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte{7}, 65536)
	if err := unix.Setxattr(f, "user.big", big, 0); err != nil {
		t.Fatalf("value of 65536 bytes: %v", err)
	}
	if err := unix.Setxattr(f, "user.big", append(big, 1), 0); err != syscall.E2BIG {
		t.Fatalf("value of 65537 bytes: %v, want E2BIG", err)
	}
	if err := unix.Setxattr(f, "user.z", []byte("zz"), 0); err != nil {
		t.Fatal(err)
	}
	c.Restart(t)
	buf := make([]byte, 70000)
	n, err := unix.Getxattr(f, "user.big", buf)
	if err != nil || !bytes.Equal(buf[:n], big) {
		t.Fatalf("after restart: %d bytes, %v", n, err)
	}
	n, err = unix.Listxattr(f, buf)
	if err != nil || string(buf[:n]) != "user.big\x00user.z\x00" {
		t.Fatalf("list after restart: %q, %v", buf[:max(n, 0)], err)
	}
	// A new file under a name that had xattrs starts without any.
	if err := os.Remove(f); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if n, err := unix.Listxattr(f, buf); err != nil || n != 0 {
		t.Fatalf("list of a new file: %q, %v", buf[:max(n, 0)], err)
	}
}

// TestXattrsAnsweredLocallyWhileNoneExist: while the namespace holds no
// extended attribute, what ls -l (security.selinux, the ACL) and cp -a
// (the list) ask of every file is answered without a metaserver call
// per file. Once this mount sets one, the metaserver answers; another
// mount that had seen none sees it within the attribute timeout.
func TestXattrsAnsweredLocallyWhileNoneExist(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{AttrTimeout: time.Second})
	names := []string{"a", "b", "c", "d"}
	for _, n := range names {
		if err := os.WriteFile(c.Path(n), []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	calls := func(cl *client.Client) uint64 {
		return cl.MetaCalls(wire.MGetXattr) + cl.MetaCalls(wire.MListXattr)
	}
	absent := func(path, name string) {
		t.Helper()
		if _, err := unix.Lgetxattr(path, name, make([]byte, 64)); err != unix.ENODATA {
			t.Fatalf("getxattr %s %s: %v, want ENODATA", path, name, err)
		}
	}
	list := func(path string) string {
		t.Helper()
		buf := make([]byte, 256)
		n, err := unix.Llistxattr(path, buf)
		if err != nil {
			t.Fatalf("listxattr %s: %v", path, err)
		}
		return strings.ReplaceAll(string(buf[:n]), "\x00", " ")
	}
	before, asked := calls(c.Client), c.Client.MetaCalls(wire.MXattrsInUse)
	for _, n := range names {
		absent(c.Path(n), "security.selinux")
		absent(c.Path(n), "system.posix_acl_access")
		absent(c.Path(n), "user.x")
		// A name no inode can have is refused as the metaserver would.
		if _, err := unix.Lgetxattr(c.Path(n), "bogus.x", make([]byte, 64)); err != unix.EOPNOTSUPP {
			t.Fatalf("getxattr %s bogus.x: %v, want EOPNOTSUPP", n, err)
		}
		if got := list(c.Path(n)); got != "" {
			t.Fatalf("listxattr %s: %q, want nothing", n, got)
		}
	}
	if n := calls(c.Client) - before; n != 0 {
		t.Fatalf("with no extended attribute in the namespace, %d files' questions cost %d metaserver calls, want 0", len(names), n)
	}
	if n := c.Client.MetaCalls(wire.MXattrsInUse) - asked; n > 1 {
		t.Fatalf("asked %d times whether the namespace has extended attributes, want at most once per attribute timeout", n)
	}

	_, mnt2 := c.AddMount(t)
	absent(filepath.Join(mnt2, "a"), "user.x") // the second mount sees none too
	if err := unix.Lsetxattr(c.Path("a"), "user.x", []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	if got := list(c.Path("a")); got != "user.x " {
		t.Fatalf("listxattr after setxattr: %q", got)
	}
	before = calls(c.Client)
	absent(c.Path("b"), "user.x")
	if calls(c.Client) == before {
		t.Fatal("after this mount set an attribute, a getxattr of another file was still answered locally")
	}
	deadline := time.Now().Add(1500 * time.Millisecond) // the attribute timeout, and some
	for {
		buf := make([]byte, 8)
		n, err := unix.Lgetxattr(filepath.Join(mnt2, "a"), "user.x", buf)
		if err == nil && string(buf[:n]) == "1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("another mount still does not see the attribute after the attribute timeout: %q, %v", buf[:max(n, 0)], err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
