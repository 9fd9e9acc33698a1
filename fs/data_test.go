package fs_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/cairn-fs/cairn/internal/testcluster"
	"golang.org/x/sys/unix"
)

// dataTrace runs fallocate, SEEK_DATA/SEEK_HOLE, sparse writes past 4 GiB
// and truncates on a file in dir and returns what each step answered and
// what the file then held. TestDataSemanticsMatchLocal compares a mount
// with the local ext4 directory.
//
// Seek results are compared on the file that is only written, punched
// and truncated. ext4 reports ranges that fallocate allocated without
// writing (mode 0, KEEP_SIZE, ZERO_RANGE) as data; cairn allocates
// nothing ahead, so they are holes there: on the file that gets those,
// only sizes, contents and errors are compared.
func dataTrace(t *testing.T, dir string) []string {
	var f *os.File
	seeks := true
	open := func(name string) {
		var err error
		f, err = os.OpenFile(filepath.Join(dir, name), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func(f *os.File) func() { return func() { f.Close() } }(f))
	}
	var trace []string
	add := func(format string, args ...any) { trace = append(trace, fmt.Sprintf(format, args...)) }
	state := func() {
		var st syscall.Stat_t
		if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
			t.Fatal(err)
		}
		sum := "(large)"
		if st.Size <= 1<<20 {
			b := make([]byte, st.Size)
			if _, err := f.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			sum = fmt.Sprintf("%x", sha256.Sum256(b))[:16]
		}
		add("  size %d content %s", st.Size, sum)
		if !seeks {
			return
		}
		for _, off := range []int64{0, 500, 4095, 4096, 5000, 8192, 9000, 12287, 12288, 16384, 20000, 29999, 30000, 40000, 4 << 30, 5 << 30, 5<<30 + 4096} {
			if off > st.Size+1 && off != 4<<30 && off != 5<<30 {
				continue
			}
			d, derr := unix.Seek(int(f.Fd()), off, unix.SEEK_DATA)
			h, herr := unix.Seek(int(f.Fd()), off, unix.SEEK_HOLE)
			add("  seek %d: data %d %v, hole %d %v", off, d, derr, h, herr)
		}
	}
	falloc := func(mode uint32, off, n int64) {
		err := unix.Fallocate(int(f.Fd()), mode, off, n)
		add("fallocate mode %#x %d+%d: %v", mode, off, n, err)
		state()
	}
	write := func(off int64, b []byte) {
		_, err := f.WriteAt(b, off)
		add("write %d+%d: %v", off, len(b), err)
		state()
	}
	trunc := func(size int64) {
		add("truncate %d: %v", size, f.Truncate(size))
		state()
	}
	const punch = unix.FALLOC_FL_PUNCH_HOLE | unix.FALLOC_FL_KEEP_SIZE
	pattern := bytes.Repeat([]byte("0123456789abcdef"), 768) // 12288 bytes

	open("punched")
	write(0, pattern)
	falloc(punch, 1000, 8000)
	write(20000, pattern[:10000])
	falloc(punch, 16000, 100)
	falloc(punch, 20480, 4096)
	falloc(unix.FALLOC_FL_PUNCH_HOLE, 0, 100) // EINVAL: punching needs KEEP_SIZE
	falloc(punch, 0, 0)                       // EINVAL
	falloc(punch, 4096, 4096)
	write(8190, []byte("xy"))
	falloc(punch, 0, 1<<20) // past the end: the size stays
	write(4000, pattern[:200])
	// Past 4 GiB, sparse.
	write(5<<30, []byte("far away"))
	got := make([]byte, 8)
	_, err := f.ReadAt(got, 5<<30)
	add("read at 5 GiB: %q %v", got, err)
	zero := make([]byte, 4096)
	_, err = f.ReadAt(zero, 4<<30)
	add("read at 4 GiB: zeros %v %v", bytes.Count(zero, []byte{0}) == len(zero), err)
	trunc(4<<30 + 1)
	write(4<<30, []byte("ab"))
	trunc(30000)
	trunc(0)

	open("allocated")
	seeks = false
	write(0, pattern)
	falloc(0, 20000, 10000)
	falloc(unix.FALLOC_FL_KEEP_SIZE, 40000, 5000)
	falloc(unix.FALLOC_FL_ZERO_RANGE, 2000, 3000)
	falloc(unix.FALLOC_FL_ZERO_RANGE, 29000, 4000)
	falloc(unix.FALLOC_FL_ZERO_RANGE|unix.FALLOC_FL_KEEP_SIZE, 32000, 4000)
	falloc(0, 100, 100) // inside: nothing changes
	falloc(unix.FALLOC_FL_ZERO_RANGE|unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 0, 10)
	write(40000, []byte("after"))
	falloc(unix.FALLOC_FL_KEEP_SIZE, 1<<20, 1<<20)
	trunc(50000)
	return trace
}

func TestDataSemanticsMatchLocal(t *testing.T) {
	want := dataTrace(t, t.TempDir())
	c := testcluster.Start(t, testcluster.Options{})
	got := dataTrace(t, c.MountDir)
	if len(got) != len(want) {
		t.Errorf("%d steps on cairn, %d locally", len(got), len(want))
	}
	for i := range min(len(want), len(got)) {
		if want[i] != got[i] {
			t.Errorf("step %d:\nlocal %s\ncairn %s", i, want[i], got[i])
		}
	}
	if t.Failed() {
		for _, s := range got {
			t.Log(s)
		}
	}
}
