package fs_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-fs/cairn/internal/testcluster"
	"golang.org/x/sys/unix"
)

// edgeScript runs limits and special files on one side; every line is
// compared with the local disk's.
func edgeScript(dir string) []string {
	var out []string
	p := func(rel string) string { return filepath.Join(dir, rel) }
	say := func(what string, err error) {
		out = append(out, fmt.Sprintf("%s: %s", what, modelErrStr(modelErrno(err))))
	}
	n255, n256 := strings.Repeat("n", 255), strings.Repeat("n", 256)

	say("create name of 255", os.WriteFile(p(n255), nil, 0o644))
	say("create name of 256", os.WriteFile(p(n256), nil, 0o644))
	say("mkdir name of 256", unix.Mkdir(p(n256), 0o755))
	say("symlink name of 256", unix.Symlink("x", p(n256)))
	say("link to name of 256", unix.Link(p(n255), p(n256)))
	say("rename to name of 256", unix.Rename(p(n255), p(n256)))
	var st unix.Stat_t
	say("stat name of 255", unix.Lstat(p(n255), &st))
	say("stat name of 256", unix.Lstat(p(n256), &st))
	say("unlink name of 255", unix.Unlink(p(n255)))

	// Paths up to PATH_MAX (4096 with its NUL), relative to dir.
	comp := strings.Repeat("p", 200)
	rel := ""
	for len(rel)+len(comp)+1 < 4095-20 {
		rel = filepath.Join(rel, comp)
		if err := unix.Mkdir(p(rel), 0o755); err != nil {
			say("mkdir deep", err)
			break
		}
	}
	fill := 4095 - len(dir) - 1 - len(rel) - 1 // the absolute path is 4095 bytes
	if fill > 0 && fill <= 255 {
		say("create at a path of 4095", os.WriteFile(p(filepath.Join(rel, strings.Repeat("f", fill))), []byte("x"), 0o644))
		say("create at a path of 4096", os.WriteFile(p(filepath.Join(rel, strings.Repeat("g", fill+1))), []byte("x"), 0o644))
	} else {
		out = append(out, fmt.Sprintf("no room for a filler of %d", fill))
	}

	// Symlinks: loops, long chains, long targets.
	unix.Symlink("loop2", p("loop1"))
	unix.Symlink("loop1", p("loop2"))
	say("stat a symlink loop", unix.Stat(p("loop1"), &st))
	say("open a symlink loop", func() error { _, err := os.Open(p("loop1")); return err }())
	say("O_NOFOLLOW on a symlink", func() error { _, err := unix.Open(p("loop1"), unix.O_RDONLY|unix.O_NOFOLLOW, 0); return err }())
	os.WriteFile(p("end"), []byte("end"), 0o644)
	prev := "end"
	for i := range 41 {
		name := fmt.Sprintf("chain%d", i)
		unix.Symlink(prev, p(name))
		prev = name
		if i == 39 || i == 40 {
			say(fmt.Sprintf("follow a chain of %d symlinks", i+1), unix.Stat(p(name), &st))
		}
	}
	say("symlink target of 4095", unix.Symlink(strings.Repeat("t/", 2047)+"t", p("longtarget")))
	buf := make([]byte, 5000)
	n, err := unix.Readlink(p("longtarget"), buf)
	say(fmt.Sprintf("readlink it (%d bytes)", n), err)
	say("symlink target of 4096", unix.Symlink(strings.Repeat("t/", 2048), p("longertarget")))

	// Special files keep their type and device number.
	say("mkfifo", unix.Mkfifo(p("fifo"), 0o640))
	say("mknod socket", unix.Mknod(p("sock"), unix.S_IFSOCK|0o600, 0))
	say("mknod char", unix.Mknod(p("null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	say("mknod block", unix.Mknod(p("loop"), unix.S_IFBLK|0o660, int(unix.Mkdev(7, 200))))
	say("mknod big device", unix.Mknod(p("big"), unix.S_IFCHR|0o600, int(unix.Mkdev(300, 70000))))
	for _, name := range []string{"fifo", "sock", "null", "loop", "big"} {
		if err := unix.Lstat(p(name), &st); err != nil {
			say("stat "+name, err)
			continue
		}
		out = append(out, fmt.Sprintf("%s: %s mode %#o rdev %d:%d size %d", name, modelTypeName(st.Mode), st.Mode&0o7777,
			unix.Major(st.Rdev), unix.Minor(st.Rdev), st.Size))
	}
	list, errno := modelListDir(dir)
	out = append(out, fmt.Sprintf("listing of %d bytes (%s): %s", len(list), modelErrStr(errno), strings.ReplaceAll(list, n255, "N255")))
	var sfs unix.Statfs_t
	say("statfs", unix.Statfs(dir, &sfs))
	out = append(out, fmt.Sprintf("statfs namelen %d, blocks>0 %v, files>0 %v", sfs.Namelen, sfs.Blocks > 0, sfs.Files > 0))
	return out
}

func TestEdgesMatchLocal(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	// The same length of directory on both sides, so that paths near
	// PATH_MAX are alike.
	local := t.TempDir()
	cairn := c.Path(strings.Repeat("x", max(len(local)-len(c.MountDir)-1, 1)))
	local = filepath.Join(local, strings.Repeat("x", max(len(c.MountDir)+1+len(filepath.Base(cairn))-len(local)-1, 1)))
	if len(cairn) != len(local) {
		t.Fatalf("could not make directories of one length: %q %q", cairn, local)
	}
	for _, d := range []string{cairn, local} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	got, want := edgeScript(cairn), edgeScript(local)
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			t.Errorf("differs:\ncairn: %s\nlocal: %s", g, w)
		} else {
			t.Logf("both: %s", g)
		}
	}
}
