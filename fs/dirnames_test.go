package fs_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairn-fs/cairn/internal/testcluster"
)

// TestDirNamesAnswerLocally: in a directory this mount made, a lookup of
// a name that is not there is answered by the mount (client/dirnames.go).
// A name another mount added is therefore not seen at once, as with a
// negative entry the kernel caches, but as soon as this mount changes the
// directory itself (the metaserver's ctimes show the other change), or
// when the entry timeout has passed.
func TestDirNamesAnswerLocally(t *testing.T) {
	const timeout = 500 * time.Millisecond
	c := testcluster.Start(t, testcluster.Options{AttrTimeout: timeout})
	_, second := c.AddMount(t)
	touch := func(p string) {
		t.Helper()
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	exists := func(p string) bool {
		t.Helper()
		_, err := os.Lstat(p)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		return err == nil
	}
	// What the mount knows of d is trusted for the timeout after its own
	// last change there: a look at another mount's new name within it
	// must not see the name. A look that came later (a busy machine)
	// proves nothing; then the same again in a new directory.
	var name, d string
	for try := 0; ; try++ {
		name = fmt.Sprint("d", try)
		d = c.Path(name)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		touch(filepath.Join(d, "mine"))
		fresh := time.Now() // before the change: what is known is trusted until later than fresh+timeout
		if err := os.Rename(filepath.Join(d, "mine"), filepath.Join(d, "moved")); err != nil {
			t.Fatal(err)
		}
		if exists(filepath.Join(d, "mine")) || !exists(filepath.Join(d, "moved")) {
			t.Fatal("this mount's own rename not seen")
		}
		touch(filepath.Join(second, name, "theirs"))
		if !exists(filepath.Join(d, "theirs")) {
			break
		}
		if since := time.Since(fresh); since < timeout {
			t.Fatalf("a name another mount added was looked up at the metaserver %v after this mount's own change: the mount does not answer for the directory it made", since)
		}
		if try == 2 {
			t.Fatalf("the machine is too slow for this test: three tries each looked later than the %v timeout", timeout)
		}
		t.Logf("looked %v after the mount's own change, past the %v timeout: again", time.Since(fresh), timeout)
	}
	// This mount's next change in d shows that d changed meanwhile.
	touch(filepath.Join(d, "mine2"))
	if !exists(filepath.Join(d, "theirs")) {
		t.Fatal("after a change of its own, the mount still does not see the other mount's name")
	}

	// With no change of its own, the other mount's name shows after the timeout.
	touch(filepath.Join(second, name, "theirs2"))
	time.Sleep(timeout + 200*time.Millisecond)
	if !exists(filepath.Join(d, "theirs2")) {
		t.Fatal("the other mount's name is not seen after the entry timeout")
	}

	// A subdirectory made here is known too, and unlink and rmdir keep what is known right.
	sub := filepath.Join(d, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	touch(filepath.Join(sub, "x"))
	if err := os.Remove(filepath.Join(sub, "x")); err != nil {
		t.Fatal(err)
	}
	if exists(filepath.Join(sub, "x")) {
		t.Fatal("unlinked name still found")
	}
	touch(filepath.Join(sub, "x"))
	if !exists(filepath.Join(sub, "x")) {
		t.Fatal("re-created name not found")
	}
	if err := os.Rename(filepath.Join(sub, "x"), filepath.Join(d, "x")); err != nil {
		t.Fatal(err)
	}
	if exists(filepath.Join(sub, "x")) || !exists(filepath.Join(d, "x")) {
		t.Fatal("rename across directories not seen")
	}
	if err := os.Remove(sub); err != nil {
		t.Fatal(err)
	}
}
