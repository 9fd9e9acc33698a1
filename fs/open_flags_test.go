package fs_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/cairn-fs/cairn/internal/testcluster"
	"golang.org/x/sys/unix"
)

// appendRecord is record seq of writer w: a line whose length varies
// (up to about 9 KiB, so some straddle pages and write calls of the
// kernel), each written by one write(2).
func appendRecord(w, seq int) []byte {
	pad := (w*7919 + seq*104729) % 9000
	return fmt.Appendf(nil, "w%d s%d %s end\n", w, seq, strings.Repeat(string(rune('a'+w%26)), pad))
}

// TestAppendHelper is not a test: it is a writer process for
// TestAppendFromProcesses (go test re-executing itself).
func TestAppendHelper(t *testing.T) {
	w, err := strconv.Atoi(os.Getenv("CAIRN_APPEND_WRITER"))
	if err != nil {
		return
	}
	n, _ := strconv.Atoi(os.Getenv("CAIRN_APPEND_RECORDS"))
	f, err := os.OpenFile(os.Getenv("CAIRN_APPEND_FILE"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for seq := range n {
		if _, err := f.Write(appendRecord(w, seq)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	if err := f.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// TestAppendFromProcesses: processes appending at once through O_APPEND
// each land every record whole at the end: every record is there exactly
// once and nothing else is.
func TestAppendFromProcesses(t *testing.T) {
	const writers, records = 4, 150
	c := testcluster.Start(t, testcluster.Options{})
	path := c.Path("log")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range writers {
		cmd := exec.Command(os.Args[0], "-test.run=^TestAppendHelper$")
		cmd.Env = append(os.Environ(), "CAIRN_APPEND_WRITER="+strconv.Itoa(w),
			"CAIRN_APPEND_RECORDS="+strconv.Itoa(records), "CAIRN_APPEND_FILE="+path)
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("writer %d: %v: %s", w, err, out)
			}
		}()
	}
	wg.Wait()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	seen := map[string]int{}
	for w := range writers {
		for seq := range records {
			r := appendRecord(w, seq)
			want += len(r)
			seen[string(r)] = 0
		}
	}
	if len(got) != want {
		t.Errorf("file has %d bytes, the records %d", len(got), want)
	}
	for i, line := range bytes.SplitAfter(got, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		n, ok := seen[string(line)]
		if !ok {
			t.Fatalf("line %d is no record (torn or overlapping write): %.60q…", i, line)
		}
		seen[string(line)] = n + 1
	}
	for r, n := range seen {
		if n != 1 {
			t.Fatalf("record %.20q… found %d times", r, n)
		}
	}
}

// TestExclusiveCreateAcrossMounts: two mounts race O_CREAT|O_EXCL on the
// same names; each name is created by exactly one, the other gets EEXIST.
func TestExclusiveCreateAcrossMounts(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	_, mnt2 := c.AddMount(t)
	dirs := []string{c.MountDir, mnt2}
	for i := range 40 {
		name := fmt.Sprintf("excl%d", i)
		var wg sync.WaitGroup
		results := make([]error, len(dirs))
		for j, d := range dirs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				f, err := os.OpenFile(filepath.Join(d, name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
				if err == nil {
					_, err = f.WriteString(d)
					if cerr := f.Close(); err == nil {
						err = cerr
					}
				}
				results[j] = err
			}()
		}
		wg.Wait()
		won := 0
		for j, err := range results {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, os.ErrExist):
				t.Fatalf("%s on mount %d: %v", name, j+1, err)
			}
		}
		if won != 1 {
			t.Fatalf("%s: %d mounts created it exclusively: %v", name, won, results)
		}
	}
}

// TestTruncOnOpen: O_TRUNC empties a file, on the mount that wrote it and
// from another mount.
func TestTruncOnOpen(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	_, mnt2 := c.AddMount(t)
	for _, dir := range []string{c.MountDir, mnt2} {
		if err := os.WriteFile(c.Path("t"), bytes.Repeat([]byte("old "), 100000), 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(filepath.Join(dir, "t"), os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			t.Fatal(err)
		}
		if st, err := f.Stat(); err != nil || st.Size() != 0 {
			t.Fatalf("size after O_TRUNC: %v, %v", st.Size(), err)
		}
		if _, err := f.WriteString("new"); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		for _, reader := range []string{c.MountDir, mnt2} {
			got, err := os.ReadFile(filepath.Join(reader, "t"))
			if err != nil || string(got) != "new" {
				t.Fatalf("after O_TRUNC on %s, %s reads %.20q (%d bytes), %v", dir, reader, got, len(got), err)
			}
		}
	}
}

// TestDirectIO: O_DIRECT opens, writes and reads aligned buffers, and the
// data is what a normal open reads, and the other way round.
func TestDirectIO(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	const size = 1 << 20
	// O_DIRECT wants aligned memory: a fresh mapping is page aligned.
	buf, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(buf)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	path := c.Path("direct")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|syscall.O_DIRECT, 0o644)
	if err != nil {
		t.Fatalf("open O_DIRECT: %v", err)
	}
	if _, err := f.WriteAt(buf, 0); err != nil {
		t.Fatalf("O_DIRECT write: %v", err)
	}
	if _, err := f.WriteAt(buf[:4096], size); err != nil {
		t.Fatalf("O_DIRECT write: %v", err)
	}
	back, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(back)
	if n, err := f.ReadAt(back, 0); err != nil || n != size || !bytes.Equal(back, buf) {
		t.Fatalf("O_DIRECT read back: %d bytes, %v, equal %v", n, err, bytes.Equal(back, buf))
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil || len(got) != size+4096 || !bytes.Equal(got[:size], buf) || !bytes.Equal(got[size:], buf[:4096]) {
		t.Fatalf("buffered read of O_DIRECT data: %d bytes, %v", len(got), err)
	}
	// Buffered writes, read with O_DIRECT.
	if err := os.WriteFile(path, bytes.Repeat([]byte{9}, size), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err = os.OpenFile(path, os.O_RDONLY|syscall.O_DIRECT, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if n, err := f.ReadAt(back, 0); err != nil || n != size || !bytes.Equal(back, bytes.Repeat([]byte{9}, size)) {
		t.Fatalf("O_DIRECT read of buffered data: %d bytes, %v", n, err)
	}
}
