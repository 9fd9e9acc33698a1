package fs_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/cairn-fs/cairn/internal/testcluster"
	"golang.org/x/sys/unix"
)

// TestConcurrentOps runs operations from several threads at once on one
// mount, where POSIX defines the outcome whatever the order: O_APPEND
// writes land whole and none is lost, racing creators of one name see
// exactly one winner, and so on. Each check runs on the local disk too,
// so that a check that is wrong about Linux shows up as a local failure.
func TestConcurrentOps(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	for _, side := range []struct{ name, dir string }{{"local", t.TempDir()}, {"cairn", c.Path("conc")}} {
		if err := os.MkdirAll(side.dir, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Run(side.name, func(t *testing.T) {
			concurrentAppends(t, side.dir)
			concurrentCreates(t, side.dir)
			concurrentOneWinner(t, side.dir)
		})
	}
	// The same races between two mounts, which no kernel lock orders: the
	// metaserver's transactions must.
	_, second := c.AddMount(t)
	t.Run("two mounts", func(t *testing.T) {
		concurrentOneWinner(t, c.Path("conc2"), filepath.Join(second, "conc2"))
	})
}

const concWorkers = 4

// concurrently runs f(w) in concWorkers goroutines and waits for them.
func concurrently(f func(w int)) {
	var wg sync.WaitGroup
	for w := range concWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(w)
		}()
	}
	wg.Wait()
}

// concurrentAppends: each worker appends records through its own
// O_APPEND descriptor; the file must hold every record once, each whole.
func concurrentAppends(t *testing.T, dir string) {
	const perWorker, size = 200, 64
	p := filepath.Join(dir, "appended")
	record := func(w, i int) []byte {
		r := fmt.Appendf(nil, "worker %d record %d ", w, i)
		return append(r, bytes.Repeat([]byte{'a' + byte(w)}, size-len(r)-1)...)
	}
	errs := make(chan error, concWorkers)
	concurrently(func(w int) {
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			errs <- err
			return
		}
		for i := range perWorker {
			if _, err := f.Write(append(record(w, i), '\n')); err != nil {
				errs <- err
				break
			}
		}
		if err := f.Close(); err != nil {
			errs <- err
		}
	})
	close(errs)
	for err := range errs {
		t.Fatalf("append: %v", err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) != concWorkers*perWorker*size {
		t.Fatalf("appends: %d bytes, want %d", len(data), concWorkers*perWorker*size)
	}
	seen := map[string]bool{}
	for _, line := range bytes.Split(bytes.TrimSuffix(data, []byte{'\n'}), []byte{'\n'}) {
		seen[string(line)] = true
	}
	for w := range concWorkers {
		for i := range perWorker {
			if !seen[string(record(w, i))] {
				t.Fatalf("appends: record %d of worker %d missing or torn", i, w)
			}
		}
	}
}

// concurrentCreates: the workers create names in one directory, each
// removing every other one it made; the listing and the directory's link
// count must show exactly what is left.
func concurrentCreates(t *testing.T, dir string) {
	const perWorker = 150
	d := filepath.Join(dir, "creates")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, concWorkers)
	concurrently(func(w int) {
		for i := range perWorker {
			name := filepath.Join(d, fmt.Sprintf("w%d-%d", w, i))
			var err error
			if i%3 == 0 {
				err = os.Mkdir(name, 0o755)
			} else {
				err = os.WriteFile(name, nil, 0o644)
			}
			if err == nil && i%2 == 1 {
				err = os.Remove(name)
			}
			if err != nil {
				errs <- err
				return
			}
		}
	})
	close(errs)
	for err := range errs {
		t.Fatalf("create: %v", err)
	}
	ents, err := os.ReadDir(d)
	if err != nil {
		t.Fatal(err)
	}
	var got, want []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	dirs := 0
	for w := range concWorkers {
		for i := 0; i < perWorker; i += 2 {
			want = append(want, fmt.Sprintf("w%d-%d", w, i))
			if i%3 == 0 {
				dirs++
			}
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("creates: listed %d names, want %d", len(got), len(want))
	}
	var st unix.Stat_t
	if err := unix.Stat(d, &st); err != nil || int(st.Nlink) != 2+dirs {
		t.Fatalf("creates: directory nlink %d (%v), want %d", st.Nlink, err, 2+dirs)
	}
}

// concurrentOneWinner: workers race to create, link to, rename onto and
// remove the same names; exactly one of them wins each race, and the
// others get Linux's error. With several views of dir (mounts), worker w
// works through views[w%len(views)].
func concurrentOneWinner(t *testing.T, dir string, views ...string) {
	if err := os.MkdirAll(filepath.Join(dir, "races"), 0o755); err != nil {
		t.Fatal(err)
	}
	if len(views) == 0 {
		views = []string{dir}
	}
	at := func(w int, name string) string { return filepath.Join(views[w%len(views)], "races", name) }
	p := func(name string) string { return at(0, name) }
	if err := os.WriteFile(p("src"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	races := []struct {
		what  string
		loser unix.Errno
		do    func(round, w int) error
	}{
		{"mkdir of one name", unix.EEXIST, func(r, w int) error { return unix.Mkdir(at(w, fmt.Sprint("d", r)), 0o755) }},
		{"O_EXCL create of one name", unix.EEXIST, func(r, w int) error {
			fd, err := unix.Open(at(w, fmt.Sprint("f", r)), unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY, 0o644)
			if err == nil {
				unix.Close(fd)
			}
			return err
		}},
		{"link to one name", unix.EEXIST, func(r, w int) error { return unix.Link(at(w, "src"), at(w, fmt.Sprint("l", r))) }},
		{"symlink at one name", unix.EEXIST, func(r, w int) error { return unix.Symlink("src", at(w, fmt.Sprint("s", r))) }},
		{"rename of one file", unix.ENOENT, func(r, w int) error {
			return unix.Rename(at(w, fmt.Sprint("f", r)), at(w, fmt.Sprint("moved", r, "-", w)))
		}},
		{"unlink of one name", unix.ENOENT, func(r, w int) error { return unix.Unlink(at(w, fmt.Sprint("l", r))) }},
		{"rmdir of one dir", unix.ENOENT, func(r, w int) error { return unix.Rmdir(at(w, fmt.Sprint("d", r))) }},
	}
	for round := range 20 {
		for _, race := range races {
			var mu sync.Mutex
			results := map[unix.Errno]int{}
			concurrently(func(w int) {
				err := race.do(round, w)
				errno := unix.Errno(0)
				if err != nil {
					errno = err.(unix.Errno)
				}
				mu.Lock()
				results[errno]++
				mu.Unlock()
			})
			if results[0] != 1 || results[race.loser] != concWorkers-1 {
				t.Fatalf("round %d, %s: results %v, want one success and %d × %v", round, race.what, results, concWorkers-1, race.loser)
			}
		}
	}
	var st unix.Stat_t
	if err := unix.Stat(p("src"), &st); err != nil || st.Nlink != 1 {
		t.Fatalf("after the races src has nlink %d (%v), want 1", st.Nlink, err)
	}
}
