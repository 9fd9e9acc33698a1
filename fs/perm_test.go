package fs_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-fs/cairn/client"
	"github.com/cairn-fs/cairn/fs"
	"github.com/cairn-fs/cairn/internal/testcluster"
)

// Permission tests as unprivileged users: the same shell steps run on
// the cairn mount and on the local disk (ext4 under /tmp), each as a
// given uid with its groups, and every step's output and exit status
// must agree. Users are bare numeric ids: nothing is added to
// /etc/passwd.

type permUser struct {
	name   string
	uid    uint32
	groups []uint32 // the first is the primary group
}

var (
	permRoot  = permUser{"root", 0, []uint32{0}}
	permAlice = permUser{"alice", 4242, []uint32{4242, 5000}}
	permBob   = permUser{"bob", 4343, []uint32{4343}}
)

type permStep struct {
	user permUser
	cmd  string
}

// runPermSteps runs steps in dir and returns one line per step.
func runPermSteps(t *testing.T, dir string, steps []permStep) []string {
	t.Helper()
	var out []string
	for _, s := range steps {
		cmd := exec.Command("/bin/sh", "-c", s.cmd)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{
			Uid: s.user.uid, Gid: s.user.groups[0], Groups: s.user.groups[1:],
		}}
		b, err := cmd.CombinedOutput()
		status := "ok"
		if err != nil {
			status = err.Error()
		}
		out = append(out, fmt.Sprintf("%s$ %s\n%s[%s]", s.user.name, s.cmd, b, status))
	}
	return out
}

// openForAll makes dir and its parent reachable by every user (temporary
// directories are 0700).
func openForAll(t *testing.T, dir string) {
	t.Helper()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// comparePerm runs steps on a fresh cairn directory and a fresh local one.
func comparePerm(t *testing.T, c *testcluster.Cluster, name string, steps []permStep) {
	t.Helper()
	cairn := c.Path(name)
	local := filepath.Join(t.TempDir(), name)
	openForAll(t, filepath.Dir(local))
	for _, d := range []string{cairn, local} {
		if err := os.Mkdir(d, 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	got, want := runPermSteps(t, cairn, steps), runPermSteps(t, local, steps)
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("step %d differs:\ncairn: %s\nlocal: %s", i, got[i], want[i])
		} else {
			t.Logf("%s", got[i])
		}
	}
}

func permCluster(t *testing.T) *testcluster.Cluster {
	return permClusterWith(t, testcluster.Options{})
}

func permClusterWith(t *testing.T, opts testcluster.Options) *testcluster.Cluster {
	c := testcluster.Start(t, opts)
	openForAll(t, c.Dir)
	return c
}

func TestPermissionsAsUsers(t *testing.T) {
	if _, err := exec.LookPath("setfattr"); err != nil {
		t.Fatal("setfattr and getfattr are needed: apt-get install attr")
	}
	c := permCluster(t)
	A, B, R := permAlice, permBob, permRoot
	stat := "stat -c '%n %a %u %g %s'"
	comparePerm(t, c, "perm", []permStep{
		// Mode bits, owner and supplementary groups.
		{A, "umask 022; echo secret > own && chmod 640 own && " + stat + " own"},
		{B, "cat own"},
		{A, "chgrp 5000 own && " + stat + " own"},
		{B, "cat own; echo more >> own"},
		{R, "chmod 604 own && " + stat + " own"},
		{B, "cat own; echo more >> own"},
		{A, "cat own"}, // the owner class wins even when other may read
		{A, "umask 077; touch private; mkdir pdir; mkfifo pfifo; " + stat + " private pdir pfifo"},
		{A, "umask 000; touch open; mkdir odir; " + stat + " open odir"},
		// access(2) and faccessat(AT_EACCESS), as test(1) asks.
		{B, "for f in own private open pdir odir; do for op in -r -w -x; do test $op $f && printf '%s%s ' $f $op; done; done; echo"},
		{A, "for f in own private open pdir odir; do for op in -r -w -x; do test $op $f && printf '%s%s ' $f $op; done; done; echo"},
		// chown rules: only root gives a file away; the owner may
		// change the group to one of theirs.
		{A, "chown 4343 own"},
		{A, "chgrp 4343 own"},
		{A, "chgrp 4242 own && " + stat + " own"},
		{B, "chgrp 4343 own"},
		{B, "chmod 777 own"},
		{R, "chown 4343:4343 own && " + stat + " own"},
		// utimensat: a writer may set the times to now; only the owner
		// (or root) may set them to given values.
		{A, "umask 0; echo x > shared && chmod 666 shared && echo y > ro && chmod 644 ro"},
		{B, "touch shared; touch -m shared; touch -a shared; touch -d @1000 shared; touch -m -d @2000 shared; touch ro"},
		{A, "touch -d @3000 shared && stat -c '%n %X %Y' shared"},
		{R, "touch -d @4000 shared && stat -c '%n %X %Y' shared"},
		// Extended attributes: the trusted namespace is root's alone.
		{A, "echo x > xf && setfattr -n user.mine -v 1 xf && setfattr -n trusted.t -v 1 xf"},
		{R, "setfattr -n trusted.t -v 1 xf && setfattr -n security.s -v 1 xf && getfattr -m - -d --absolute-names xf | sort"},
		{A, "getfattr -m - -d --absolute-names xf | sort; getfattr -n trusted.t xf"},
		{B, "setfattr -n user.bob -v 1 xf; getfattr -n user.mine xf"},
		{A, "chmod 666 xf"},
		{B, "setfattr -n user.bob -v 1 xf && setfattr -x user.mine xf && getfattr -m - -d --absolute-names xf | sort"},
		// Directories: write and search bits.
		{A, "mkdir locked && touch locked/f && chmod 555 locked && " + stat + " locked"},
		{A, "touch locked/g; rm locked/f"},
		{B, "ls locked; cat locked/f"},
		{A, "chmod 700 locked"},
		{B, "ls locked; " + stat + " locked/f"},
		{A, "chmod 711 locked"},
		{B, "ls locked; " + stat + " locked/f"},
		{A, "chmod 755 locked && rm -r locked"},
	})
}

func TestStickyAndSetgidDirectories(t *testing.T) {
	c := permCluster(t)
	A, B, R := permAlice, permBob, permRoot
	stat := "stat -c '%n %a %u %g'"
	comparePerm(t, c, "dirs", []permStep{
		{R, "mkdir -m 1777 tmp && mkdir sg && chown 0:5000 sg && chmod 2775 sg && " + stat + " tmp sg"},
		{A, "echo a > tmp/alices && mkdir tmp/alicedir && " + stat + " tmp/alices"},
		{B, "echo b > tmp/bobs"},
		{B, "rm -f tmp/alices; rmdir tmp/alicedir; mv tmp/alices tmp/x; ls tmp"},
		{B, "mv tmp/bobs tmp/alices; ls tmp"},
		{A, "rm -f tmp/bobs; mv tmp/bobs tmp/y; ls tmp"},
		{R, "mv tmp/bobs tmp/moved-by-root && ls tmp"},
		{B, "rm tmp/moved-by-root && ls tmp"},
		// The owner of the sticky directory may delete anything in it.
		{R, "chown 4242 tmp"},
		{B, "echo b > tmp/b2"},
		{A, "rm -f tmp/b2 && ls tmp"},
		// A setgid directory passes its group on, and its setgid bit to
		// subdirectories; a non-member's new file still gets the group.
		{A, "umask 022; touch sg/f && mkdir sg/sub && mkdir sg/sub/deeper && " + stat + " sg/f sg/sub sg/sub/deeper"},
		{R, "chmod 2777 sg"},
		{B, "umask 022; touch sg/bobs && mkdir sg/bobdir && " + stat + " sg/bobs sg/bobdir"},
		// A non-member cannot set the setgid bit on a file of that group:
		// chmod silently drops it.
		{B, "chmod 2755 sg/bobs && " + stat + " sg/bobs"},
		{A, "chmod 2755 sg/f && " + stat + " sg/f"},
	})
}

// TestSetuidClearedOnWrite: a write, a truncate or a chown by anyone but
// root (CAP_FSETID) clears the setuid bit, and the setgid bit when the
// group may execute; a chown clears them even when root does it.
func TestSetuidClearedOnWrite(t *testing.T) {
	c := permCluster(t)
	A, B, R := permAlice, permBob, permRoot
	stat := "stat -c '%n %a %u %g %s'"
	comparePerm(t, c, "suid", []permStep{
		{A, "umask 0; for f in w1 w2 w3 w4 w5 w6 w7; do echo x > $f; done; chmod 6777 w1 w2 w3 w4 w7; chmod 6767 w5; chmod 4666 w6; " + stat + " w*"},
		{B, "echo more >> w1; " + stat + " w1"},  // a stranger's write
		{A, "echo more >> w2; " + stat + " w2"},  // the owner's write
		{R, "echo more >> w3; " + stat + " w3"},  // root keeps the bits
		{B, "truncate -s 1 w4; " + stat + " w4"}, // truncate
		// Setgid without group exec: kept when a member of the group
		// writes, cleared when a stranger writes or truncates.
		{A, "echo more >> w5; " + stat + " w5"},
		{B, "echo more >> w5; " + stat + " w5"},
		{A, "chmod 2767 w5"},
		{B, "truncate -s 3 w5; " + stat + " w5"},
		{A, "chmod 2767 w5"},
		{R, "echo more >> w5; " + stat + " w5"},
		// chown(-1, -1) by a stranger would have to clear that bit: EPERM.
		{B, "perl -e 'chown(-1, -1, \"w5\") or print \"$!\\n\"'; " + stat + " w5"},
		{A, "perl -e 'chown(-1, -1, \"w5\") or print \"$!\\n\"'; " + stat + " w5"},
		{B, "dd if=/dev/zero of=w6 bs=1 count=1 seek=1 conv=notrunc status=none; " + stat + " w6"},
		{R, "chown 4343 w7; " + stat + " w7"}, // chown by root clears them too
		{R, "chmod 6755 w7 && chown :4343 w7; " + stat + " w7"},
		{R, "mkdir -m 2775 d && chown 4242 d && " + stat + " d"}, // directories keep theirs
		// Setgid without group exec, chowned by its owner: cleared when
		// the owner is not in the file's group as it was, kept when it is.
		{R, "umask 0; for f in c1 c2 c3; do echo x > $f; done; chown 4242:4343 c1 c2 && chown 4242:5000 c3 && chmod 2644 c1 c2 c3"},
		{A, "chown 4242 c1; chown :5000 c2; chown 4242 c3; " + stat + " c1 c2 c3"},
	})
}

func TestACLAsUsers(t *testing.T) {
	if _, err := exec.LookPath("setfacl"); err != nil {
		t.Fatal("setfacl and getfacl are needed: apt-get install acl")
	}
	c := permCluster(t)
	A, B := permAlice, permBob
	stat := "stat -c '%n %a %u %g'"
	facl := "getfacl -n --omit-header"
	comparePerm(t, c, "acl", []permStep{
		{A, "umask 022; echo private > f && chmod 600 f && " + stat + " f"},
		{B, "cat f"},
		// A named-user entry grants what the mode bits deny.
		{A, "setfacl -m u:4343:rw f && " + stat + " f && " + facl + " f"},
		{B, "cat f && echo bob >> f && cat f"},
		// The mask limits it; chmod of the group bits is the mask.
		{A, "setfacl -m m::r f && " + stat + " f && " + facl + " f"},
		{B, "cat f; echo again >> f"},
		{A, "chmod 660 f && " + stat + " f && " + facl + " f"},
		{B, "echo again >> f && cat f"},
		{A, "chmod 600 f && " + facl + " f"},
		{B, "cat f"},
		// A named group through a supplementary group.
		{A, "setfacl -m g:4343:r,m::r f && " + facl + " f"},
		{B, "cat f"},
		// Removing the ACL leaves the mode.
		{A, "setfacl -b f && " + stat + " f && " + facl + " f"},
		{B, "cat f"},
		// Default ACLs are inherited; they replace the umask.
		{A, "mkdir d && setfacl -d -m u:4343:rwx,g::rx,o::- d && " + facl + " d"},
		{A, "umask 077; echo new > d/file && mkdir d/sub && " + stat + " d/file d/sub && " + facl + " d/file && " + facl + " d/sub"},
		{B, "cat d/file && echo bob >> d/file && touch d/sub/bobs && ls d/sub"},
		{A, "setfacl -k d && umask 077 && touch d/after && " + stat + " d/after && " + facl + " d/after"},
		// Setting an ACL on a setgid file of a group its owner is not in
		// clears setgid, as chmod would.
		{A, "touch sgf && chmod 2750 sgf"},
		{permRoot, "chgrp 4343 sgf && chmod 2750 sgf && " + stat + " sgf"},
		{A, "setfacl -m u:4343:r sgf && " + stat + " sgf"},
		// Real programs carry ACLs and xattrs along.
		{A, "setfattr -n user.note -v hello d/file && cp -a d/file d/copy && mv d/copy d/moved && " + facl + " d/moved && getfattr -d d/moved"},
		// Only the owner (or root) may change an ACL.
		{B, "setfacl -m u:4343:rwx d/file"},
		{A, "setfacl -x u:4343 d/file && " + facl + " d/file"},
	})
}

// TestACLSeenByAnotherMount: an ACL set through one mount is enforced by
// another within the attribute timeout, also when that mount had seen
// no ACL in the namespace before (it skips per-inode lookups then).
func TestACLSeenByAnotherMount(t *testing.T) {
	if _, err := exec.LookPath("setfacl"); err != nil {
		t.Fatal("setfacl and getfacl are needed: apt-get install acl")
	}
	c := permClusterWith(t, testcluster.Options{AttrTimeout: time.Second})
	second := filepath.Join(c.Dir, "mnt2")
	if err := os.Mkdir(second, 0o755); err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(context.Background(), client.Config{Meta: c.Meta.Addr(), CA: c.CA})
	if err != nil {
		t.Fatal(err)
	}
	m2, err := fs.New(cl, second, fs.Options{AttrTimeout: time.Second})
	if err != nil {
		cl.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m2.Close(context.Background())
		cl.Close()
	})
	A, B := permAlice, permBob
	run := func(u permUser, dir, cmd string) string {
		return runPermSteps(t, dir, []permStep{{u, cmd}})[0]
	}
	if err := os.Chmod(c.MountDir, 0o777); err != nil {
		t.Fatal(err)
	}
	run(A, c.MountDir, "echo secret > f && chmod 600 f")
	if out := run(B, second, "cat f"); !strings.Contains(out, "Permission denied") {
		t.Fatalf("before the ACL: %s", out)
	}
	if out := run(A, c.MountDir, "setfacl -m u:4343:r f && getfacl -n --omit-header f"); !strings.Contains(out, "user:4343:r--") {
		t.Fatalf("setfacl: %s", out)
	}
	time.Sleep(1100 * time.Millisecond) // the attribute timeout
	if out := run(B, second, "cat f"); !strings.Contains(out, "secret") {
		t.Fatalf("the other mount does not grant what the ACL does: %s", out)
	}
	if out := run(A, second, "setfacl -x u:4343 f"); !strings.HasSuffix(out, "[ok]") {
		t.Fatalf("setfacl -x on the other mount: %s", out)
	}
	time.Sleep(1100 * time.Millisecond)
	if out := run(B, c.MountDir, "cat f"); !strings.Contains(out, "Permission denied") {
		t.Fatalf("the first mount still grants a removed ACL entry: %s", out)
	}
}
