package fs_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/cairn-fs/cairn/internal/testcluster"
	"golang.org/x/sys/unix"
)

// These tests cover random reads filling the kernel's page cache with the
// rest of the blocks they touch (client/fill.go), and the races that must
// never leave wrong bytes there: this mount's own writes and truncates,
// and another mount's changes seen at the next open.

const fillBlock = 4 << 20 // block.MaxSize

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// resident counts the pages of f's first n bytes that are in the kernel's
// page cache.
func resident(t *testing.T, f *os.File, n int) int {
	t.Helper()
	m, err := unix.Mmap(int(f.Fd()), 0, n, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	vec := make([]byte, (n+4095)/4096)
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(n), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	count := 0
	for _, v := range vec {
		count += int(v & 1)
	}
	return count
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkContent reads all of f through the page cache and compares it
// with want, reporting the first difference.
func checkContent(t *testing.T, f *os.File, want []byte, what string) {
	t.Helper()
	got := make([]byte, len(want)+4096)
	n, _ := f.ReadAt(got, 0)
	got = got[:n]
	if n != len(want) {
		t.Fatalf("%s: read %d bytes, want %d", what, n, len(want))
	}
	if !bytes.Equal(got, want) {
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: first difference at byte %d (page %d)", what, i, i/4096)
			}
		}
	}
}

// TestRandomReadFillsPageCache: one 4 KiB read in the middle of a block,
// on a mount that never saw the file, brings the aligned MiB around it
// into the kernel's page cache with the right bytes, and no more: the
// rest of the file and its size are untouched.
func TestRandomReadFillsPageCache(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Replicas: 1})
	size := 2*fillBlock + 5000 // a partial page at the end
	want := randomBytes(1, size)
	writeFile(t, c.Path("f"), want)
	f := openRandomOnNewMount(t, c, "f")
	buf := make([]byte, 4096)
	const unit = 1 << 20
	waitResident(t, f, size, unit/4096, func(int) {
		if _, err := f.ReadAt(buf, fillBlock+fillBlock/2); err != nil {
			t.Fatal(err)
		}
	}, "after a read in block 1, the MiB around it")
	if n := resident(t, f, fillBlock+fillBlock/2); n > 0 {
		t.Errorf("%d pages before the MiB read resident", n)
	}
	// Pages may go again at any time (waitResident): only more than the
	// MiB would be wrong.
	if n := resident(t, f, size); n > unit/4096 {
		t.Errorf("%d pages resident, want %d", n, unit/4096)
	}
	if st, err := f.Stat(); err != nil || st.Size() != int64(size) {
		t.Fatalf("size %v (%v), want %d", st.Size(), err, size)
	}
	// The filled pages hold the file's bytes (this read is served by them).
	got := make([]byte, unit)
	if _, err := f.ReadAt(got, fillBlock+fillBlock/2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want[fillBlock+fillBlock/2:][:unit]) {
		t.Fatal("filled pages differ from the file")
	}
	// A read in the last block fills up to the end of the file, whose
	// last page is partial, without growing it.
	if _, err := f.ReadAt(buf[:100], int64(size-200)); err != nil {
		t.Fatal(err)
	}
	checkContent(t, f, want, "whole file")
	if st, _ := f.Stat(); st.Size() != int64(size) {
		t.Fatalf("size %d after reads, want %d", st.Size(), size)
	}
}

// randomReader reads 4 KiB at random offsets of path until stop is
// closed, so that fills of the kernel's cache are in flight, and checks
// nothing; it returns how many reads it made.
func randomReader(t *testing.T, path string, span int, stop <-chan struct{}, wg *sync.WaitGroup, reads *atomic.Int64) {
	f, err := os.Open(path)
	if err != nil {
		t.Error(err)
		wg.Done()
		return
	}
	unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_RANDOM)
	go func() {
		defer wg.Done()
		defer f.Close()
		buf := make([]byte, 4096)
		r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
		for {
			select {
			case <-stop:
				return
			default:
			}
			f.ReadAt(buf, int64(r.IntN(span/4096))*4096)
			reads.Add(1)
		}
	}()
}

// startFills opens path, drops its pages from the kernel's cache and
// reads pages all over it in the background, so that fills of parts of
// every block start at once, and enough of them that the whole file is
// warmed too; the returned function waits for the reads and closes the
// file.
func startFills(t *testing.T, path string, size int) func() {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
	var wg sync.WaitGroup
	for off := fillBlock / 3; off < size; off += fillBlock / 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.ReadAt(make([]byte, 4096), int64(off))
		}()
	}
	return func() { wg.Wait(); f.Close() }
}

// readAtRandom reads a page in each of n different MiB of f's first size
// bytes, chosen at random, so that each read reaches cairn (f's pages
// there are not cached, and it is read with FADV_RANDOM).
func readAtRandom(t *testing.T, f *os.File, size, n int, seed uint64) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 3))
	buf := make([]byte, 4096)
	for _, mib := range r.Perm(size >> 20)[:n] {
		if _, err := f.ReadAt(buf, int64(mib)<<20+int64(r.IntN(256))*4096); err != nil {
			t.Fatal(err)
		}
	}
}

// waitResident calls read (with the try's number) and waits until at
// least want pages of f's first size bytes are in the kernel's page
// cache. The page cache is the machine's: this one runs DAMON, which
// reclaims page cache it finds cold (a fresh page in a cold region goes
// too), and other programs may drop caches. If pages go while it waits,
// or the count stops growing short of want for 5 s (pages went before it
// looked), it drops the file's pages and starts again, up to three times.
func waitResident(t *testing.T, f *os.File, size, want int, read func(try int), what string) {
	t.Helper()
	for try := range 3 {
		read(try)
		deadline := time.Now().Add(20 * time.Second)
		seen, grew := 0, time.Now()
		for {
			n := resident(t, f, size)
			if n >= want {
				return
			}
			if n < seen || time.Since(grew) > 5*time.Second {
				t.Logf("%s: %d of %d pages resident (%d seen before): taken from outside; reading again", what, n, want, seen)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d of %d pages resident", what, n, want)
			}
			if n > seen {
				seen, grew = n, time.Now()
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatalf("%s: never %d pages resident in three tries", what, want)
}

// warmedByRandomReads reads f at random (readAtRandom) and waits until
// all of its first size bytes are in the kernel's page cache
// (waitResident).
func warmedByRandomReads(t *testing.T, f *os.File, size, reads int, what string) {
	t.Helper()
	read := func(try int) { readAtRandom(t, f, size, reads, uint64(try)) }
	waitResident(t, f, size, (size+4095)/4096, read, what)
}

// TestRandomReadsWarmWholeFile: a file read at random, on a mount that
// never saw it, ends up wholly in the kernel's page cache with the right
// bytes and size, not just the MiB around each read; and again after the
// kernel dropped its pages (as fio's fadvise(DONTNEED) at the end of each
// pass does), once random reads reach cairn again.
func TestRandomReadsWarmWholeFile(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Replicas: 1})
	size := 8*fillBlock + 5000 // a partial page at the end
	want := randomBytes(30, size)
	writeFile(t, c.Path("f"), want)
	f := openRandomOnNewMount(t, c, "f")
	for round := range 2 {
		warmedByRandomReads(t, f, size, 16, fmt.Sprintf("round %d, after 16 random reads", round))
		checkContent(t, f, want, "whole file")
		if st, err := f.Stat(); err != nil || st.Size() != int64(size) {
			t.Fatalf("size %v (%v), want %d", st.Size(), err, size)
		}
		if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
			t.Fatal(err)
		}
		if n := resident(t, f, size); n > 0 {
			t.Fatalf("%d pages resident after FADV_DONTNEED", n)
		}
	}
}

// TestWholeWarmBounded: a file larger than the client's WarmFileBytes is
// not warmed whole, however much it is read at random: only the MiB
// around each read is.
func TestWholeWarmBounded(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Replicas: 1, WarmFileBytes: 4 * fillBlock})
	size := 8 * fillBlock
	writeFile(t, c.Path("f"), randomBytes(31, size))
	f := openRandomOnNewMount(t, c, "f")
	const reads = 16
	readAtRandom(t, f, size, reads, 1)
	time.Sleep(2 * time.Second) // the whole file would be warmed by now
	if n, most := resident(t, f, size), reads<<20/4096; n > most {
		t.Fatalf("%d pages resident after %d random reads, want at most the %d of the MiB around them", n, reads, most)
	}
}

// TestFillRacesWrites: fills started by readers never overwrite what this
// mount writes afterwards, which sits in the same page cache. Each round
// starts fills, then opens the file for writing at once, overwrites
// random pages, fsyncs (the layout changes, so readers start new fills)
// and writes again, and reads the pages back through the page cache after
// the fills that were in flight had time to land.
func TestFillRacesWrites(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Replicas: 1})
	size := 3 * fillBlock
	path := c.Path("f")
	writeFile(t, path, randomBytes(2, size))
	got := make([]byte, 4096)
	for round := range 20 {
		done := startFills(t, path, size)
		w, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(uint64(round), 7))
		written := map[int64][]byte{}
		for i := range 8 {
			if i == 4 {
				if err := w.Sync(); err != nil {
					t.Fatal(err)
				}
				done()
				done = startFills(t, path, size)
			}
			off := int64(r.IntN(size/4096)) * 4096
			page := bytes.Repeat([]byte{byte(round*8 + i + 1)}, 4096)
			if _, err := w.WriteAt(page, off); err != nil {
				t.Fatal(err)
			}
			written[off] = page
		}
		done()
		time.Sleep(20 * time.Millisecond) // fills that slipped through would land by now
		for off, page := range written {
			if _, err := w.ReadAt(got, off); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, page) {
				t.Fatalf("round %d: page at %d lost this mount's write (a stale fill?)", round, off)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFillRacesTruncate: fills in flight while the file is cut by
// truncate(2) (no writable handle open) and grown back: the cut holds
// (size, EOF), and the regrown range reads as zeros, not as the old bytes
// a late fill would have put back (growing it to where it was would not
// make the kernel drop them).
func TestFillRacesTruncate(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Replicas: 1})
	size := 3 * fillBlock
	path := c.Path("f")
	want := randomBytes(10, size)
	writeFile(t, path, want)
	r, err := os.Open(path) // held across the rounds: its pages are never dropped by an open
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for round := range 20 {
		done := startFills(t, path, size)
		cut := fillBlock/2 + round*fillBlock/8
		if err := os.Truncate(path, int64(cut)); err != nil {
			t.Fatal(err)
		}
		done()
		time.Sleep(20 * time.Millisecond) // fills that slipped through would land by now
		if err := os.Truncate(path, int64(size)); err != nil {
			t.Fatal(err)
		}
		regrown := append(append([]byte(nil), want[:cut]...), make([]byte, size-cut)...)
		checkContent(t, r, regrown, "after cutting and growing it back")
		writeFile(t, path, want)
	}
}

// TestFillAndOtherMountsUpdate: a mount whose readers keep filling the
// page cache with the old content sees another mount's new content in
// full at its next open (close-to-open), whatever fills were in flight.
func TestFillAndOtherMountsUpdate(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Replicas: 1})
	_, second := c.AddMount(t)
	size := 3 * fillBlock
	path, other := c.Path("f"), filepath.Join(second, "f")
	writeFile(t, other, randomBytes(20, size))
	for round := range 4 {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var reads atomic.Int64
		for range 3 {
			wg.Add(1)
			randomReader(t, path, size, stop, &wg, &reads)
		}
		for reads.Load() < 20 {
			time.Sleep(time.Millisecond)
		}
		want := randomBytes(uint64(21+round), size)
		writeFile(t, other, want) // flushed and committed at close
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond) // let the readers fill more
		checkContent(t, f, want, "after the other mount's update")
		f.Close()
		close(stop)
		wg.Wait()
	}
}

// openRandomOnNewMount opens name on a second mount of c, which never
// saw the file, for reading at random (FADV_RANDOM: no kernel
// readahead). The file is closed when the test ends.
func openRandomOnNewMount(t *testing.T, c *testcluster.Cluster, name string) *os.File {
	t.Helper()
	_, second := c.AddMount(t)
	f, err := os.Open(filepath.Join(second, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_RANDOM); err != nil {
		t.Fatal(err)
	}
	return f
}
