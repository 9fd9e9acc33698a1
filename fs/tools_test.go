package fs_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/cairn-fs/cairn/internal/testcluster"
)

// toolsScript exercises the tools a user reaches for first. It runs in
// the directory given as $1 with the source tree to copy in $2.
const toolsScript = `
set -eu
cd "$1"
cp -a "$2" copied
tar cf archive.tar -C "$2" .
mkdir untarred && tar xf archive.tar -C untarred
tar cf - -C untarred . | tar tf - | sort > listing.txt
mkdir -p a/b/c
echo hello > a/b/file
ln a/b/file a/hardlink
ln -s b/file a/symlink
ln -s /nonexistent/target dangling
chmod 640 a/b/file
chmod 1777 a/b/c
chown 1234:5678 a/hardlink
touch -d '2021-02-03 04:05:06.789' a/b/file
touch -m -d '2019-01-01 00:00:00' a/b
truncate -s 100000 sparse
truncate -s 50 a/b/file2 && truncate -s 10 a/b/file2
head -c 5000000 /dev/zero | tr '\0' 'z' > big
mv big a/b/c/big-moved
mv a/b/c a/c-moved
cp a/c-moved/big-moved again
rm -r copied/$(ls copied | head -n 1) || true
mkfifo fifo
stat -c '%s %h %a %u %g %F' a/b/file a/hardlink a/symlink sparse a/c-moved > stat.txt
du -s --apparent-size -B1 a sparse > du.txt
if command -v git >/dev/null; then
	export GIT_AUTHOR_DATE='2020-01-01T00:00:00Z' GIT_COMMITTER_DATE='2020-01-01T00:00:00Z'
	git init -q repo
	cd repo
	git config user.email test@example.com
	git config user.name test
	cp -r "$2"/. .
	git add -A
	git commit -q -m first
	echo change >> "$(git ls-files | head -n 1)"
	git commit -qam second
	git log --format='%H %s' > ../gitlog.txt
	git fsck --strict --no-progress
	git status --porcelain > ../gitstatus.txt
	rm -rf .git/hooks
	cd ..
fi
`

func TestShellTools(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	src, err := filepath.Abs("../internal") // a real source tree to copy
	if err != nil {
		t.Fatal(err)
	}
	local := t.TempDir()
	runScript(t, toolsScript, local, src)
	runScript(t, toolsScript, c.Path(), src)
	want := snapshot(t, local, false)
	if got := snapshot(t, c.Path(), false); got != want {
		t.Fatalf("the mount differs from a local directory after the same commands:\n%s", diffLines(want, got))
	}
	if out, err := exec.Command("df", "-P", c.Path()).CombinedOutput(); err != nil || !strings.Contains(string(out), "cairn") {
		t.Errorf("df on the mount: %v\n%s", err, out)
	}

	// Every file, link, mode, owner and mtime comes back after a restart.
	before := snapshot(t, c.Path(), true)
	c.Restart(t)
	if after := snapshot(t, c.Path(), true); after != before {
		t.Fatalf("tree changed across a restart:\n%s", diffLines(before, after))
	}
}

func runScript(t *testing.T, script string, args ...string) {
	t.Helper()
	cmd := exec.Command("bash", append([]string{"-c", script, "script"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("script in %s: %v\n%s", args[0], err, out)
	}
}

// snapshot describes a tree, one line per entry: type, mode, owner, size,
// link count, content hash or link target, and (with times) the mtime.
// Hard links are identified by the first path of their inode.
func snapshot(t *testing.T, root string, times bool) string {
	t.Helper()
	var lines []string
	inodes := map[uint64]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		var st syscall.Stat_t
		if err := syscall.Lstat(path, &st); err != nil {
			return err
		}
		line := fmt.Sprintf("%s mode=%o uid=%d gid=%d", rel, st.Mode, st.Uid, st.Gid)
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFREG:
			line += fmt.Sprintf(" size=%d nlink=%d", st.Size, st.Nlink)
			if strings.HasSuffix(rel, ".git/index") {
				break // holds inode numbers and change times: only its size compares
			}
			if first, ok := inodes[st.Ino]; ok {
				line += " link-of=" + first
			} else {
				inodes[st.Ino] = rel
				line += " sha=" + fileHash(t, path)
			}
		case syscall.S_IFLNK:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			line += " -> " + target
		case syscall.S_IFDIR:
			line += fmt.Sprintf(" nlink=%d", st.Nlink)
		}
		if times && st.Mode&syscall.S_IFMT != syscall.S_IFLNK {
			line += fmt.Sprintf(" mtime=%d.%09d", st.Mtim.Sec, st.Mtim.Nsec)
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func fileHash(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// diffLines lists the lines only in a or only in b.
func diffLines(a, b string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	ma, mb := in(a), in(b)
	var out []string
	for l := range ma {
		if !mb[l] {
			out = append(out, "- "+l)
		}
	}
	for l := range mb {
		if !ma[l] {
			out = append(out, "+ "+l)
		}
	}
	sort.Strings(out)
	if len(out) > 40 {
		out = append(out[:40], fmt.Sprintf("… and %d more", len(out)-40))
	}
	return strings.Join(out, "\n")
}
