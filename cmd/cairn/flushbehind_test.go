package main

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairn-fs/cairn/internal/block"
	"github.com/cairn-fs/cairn/internal/testcluster"
	"golang.org/x/sys/unix"
)

// TestMountKilledBetweenSetAttrAndClose: a `cairn mount` killed with
// SIGKILL after a file's futimens started uploading its writes
// (flush-behind), before close, leaves the file as the operations that
// returned made it (created, with the time futimens set) and without
// the data no close or fsync committed; the uploaded block, which
// nothing references, is swept once older than the grace period.
func TestMountKilledBetweenSetAttrAndClose(t *testing.T) {
	const grace = time.Second
	c := testcluster.Start(t, testcluster.Options{Chunkservers: 1, Replicas: 1, GCGrace: grace, ReconcileEvery: 200 * time.Millisecond})
	mount, dir := startMountProc(t, c)

	data := make([]byte, 5000)
	for i := range data {
		data[i] = byte(rand.Uint32())
	}
	id := block.Sum(data)
	h := id.String()
	stored := filepath.Join(c.ChunkDir(0), "blocks", h[:2], h)
	set := time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)

	fd, err := unix.Open(filepath.Join(dir, "f"), unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unix.Write(fd, data); err != nil {
		t.Fatal(err)
	}
	ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, unix.NsecToTimespec(set.UnixNano())}
	if err := unix.UtimesNanoAt(fd, "", ts, unix.AT_EMPTY_PATH); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(stored); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the block is not on the chunkserver 10 s after futimens")
		}
	}
	crashMount(t, mount, dir)
	unix.Close(fd) // the dead mount answers nothing

	st, err := os.Stat(c.Path("f"))
	if err != nil {
		t.Fatalf("the file the killed mount created: %v", err)
	}
	if st.Size() != 0 || !st.ModTime().Equal(set) {
		t.Fatalf("after the kill: size %d, mtime %v; want 0 (nothing was committed) and %v (futimens returned)", st.Size(), st.ModTime(), set)
	}
	for deadline := time.Now().Add(grace + 10*time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(stored); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the uncommitted block is still on the chunkserver %v after the kill (grace %v)", grace+10*time.Second, grace)
		}
	}
}
