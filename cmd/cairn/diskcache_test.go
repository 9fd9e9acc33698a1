package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestUpDiskCache: "cairn up" keeps the blocks it reads in DATA_DIR/cache
// unless given --cache-dir none.
func TestUpDiskCache(t *testing.T) {
	t.Parallel()
	needFUSE(t)
	tmp := t.TempDir()
	mnt := mountDir(t)
	content := pattern(7, 9<<20) // blocks of 4, 4 and 1 MiB
	for _, tc := range []struct {
		name    string
		flags   []string
		entries int
	}{
		{"default", nil, 3},
		{"none", []string{"--cache-dir", "none"}, 0},
	} {
		data := filepath.Join(tmp, tc.name)
		up := func(what string) *proc {
			args := append(append([]string{"up", "--meta-addr", "127.0.0.1:0"}, tc.flags...), data, mnt)
			p := startCairn(t, "up "+tc.name+" "+what, args...)
			waitMounted(t, p, mnt, 30*time.Second)
			return p
		}
		p := up("to write")
		if err := os.WriteFile(filepath.Join(mnt, "f"), content, 0o644); err != nil {
			t.Fatal(err)
		}
		stopUp(t, p, mnt, syscall.SIGINT)
		said := strings.Contains(p.stderr.String(), "caching blocks on disk in "+filepath.Join(data, "cache"))
		if said != (tc.entries > 0) {
			t.Errorf("%s: start-up says it caches on disk in DATA_DIR/cache: %v, want %v:\n%s", tc.name, said, tc.entries > 0, p.stderr.String())
		}
		p = up("to read") // its memory holds none of the blocks
		got, err := os.ReadFile(filepath.Join(mnt, "f"))
		if err != nil || !bytes.Equal(got, content) {
			t.Fatalf("%s: read back: %v (equal: %v)", tc.name, err, bytes.Equal(got, content))
		}
		cached := func() int {
			entries, _ := filepath.Glob(filepath.Join(data, "cache", "*", "*"))
			return len(entries)
		}
		if tc.entries > 0 {
			waitFor(t, 10*time.Second, "blocks in DATA_DIR/cache", func() bool { return cached() == tc.entries })
		}
		stopUp(t, p, mnt, syscall.SIGINT)
		if n := cached(); n != tc.entries {
			t.Errorf("%s: DATA_DIR/cache holds %d entries, want %d", tc.name, n, tc.entries)
		}
	}
}
