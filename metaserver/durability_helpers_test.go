package metaserver_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-fs/cairn/internal/block"
	"github.com/cairn-fs/cairn/internal/rpc"
	"github.com/cairn-fs/cairn/internal/testcluster"
	"github.com/cairn-fs/cairn/internal/wire"
)

// randomBytes returns n bytes that no other call returns.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := rand.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// blockIDs returns the IDs of the blocks a sequential write of data makes.
func blockIDs(data []byte) []block.ID {
	var ids []block.ID
	for off := 0; off < len(data); off += block.MaxSize {
		ids = append(ids, block.Sum(data[off:min(off+block.MaxSize, len(data))]))
	}
	return ids
}

// blockFile is where chunkserver i keeps block id.
func blockFile(c *testcluster.Cluster, i int, id block.ID) string {
	h := id.String()
	return filepath.Join(c.ChunkDir(i), "blocks", h[:2], h)
}

// copies counts the chunkservers whose disk holds a good copy of id.
func copies(c *testcluster.Cluster, id block.ID) int {
	n := 0
	for i := range c.Chunks {
		if b, err := os.ReadFile(blockFile(c, i, id)); err == nil && id.Verify(b) {
			n++
		}
	}
	return n
}

// storedBlocks lists the block IDs on chunkserver i's disk.
func storedBlocks(t *testing.T, c *testcluster.Cluster, i int) map[block.ID]bool {
	t.Helper()
	out := map[block.ID]bool{}
	files, _ := filepath.Glob(filepath.Join(c.ChunkDir(i), "blocks", "*", "*"))
	for _, f := range files {
		b, err := hex.DecodeString(filepath.Base(f))
		if err != nil || len(b) != 32 {
			continue
		}
		out[block.ID(b)] = true
	}
	return out
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("after %v: %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

func wantCopies(t *testing.T, c *testcluster.Cluster, what string, ids []block.ID, want int) {
	t.Helper()
	for _, id := range ids {
		if got := copies(c, id); got != want {
			t.Fatalf("%s: block %s has %d copies, want %d", what, id.Short(), got, want)
		}
	}
}

func allCopies(c *testcluster.Cluster, ids []block.ID, want int) func() bool {
	return func() bool {
		for _, id := range ids {
			if copies(c, id) != want {
				return false
			}
		}
		return true
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func checkFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes read differ from the %d written", path, len(got), len(want))
	}
}

// tmpfs mounts a fresh tmpfs of size bytes on a temporary directory, so
// that df measures only the cluster; it is unmounted at cleanup.
func tmpfs(t *testing.T, size int64) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+itoa(size)); err != nil {
		t.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount tmpfs %s: %v", dir, err)
		}
	})
	return dir
}

func itoa(n int64) string {
	var b []byte
	for ; n > 0 || len(b) == 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// dfFree is what df shows free on the mount.
func dfFree(t *testing.T, path string) uint64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Bavail * uint64(st.Bsize)
}

// chunkRPC returns an RPC client with the cluster's certificate.
func chunkRPC(t *testing.T, c *testcluster.Cluster) *rpc.Client {
	t.Helper()
	tlsConf, err := c.CA.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	rc := rpc.NewClient(tlsConf)
	t.Cleanup(rc.Close)
	return rc
}

func tasks(t *testing.T, c *testcluster.Cluster) *wire.TasksResp {
	t.Helper()
	var resp wire.TasksResp
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := chunkRPC(t, c).Call(ctx, c.Meta.Addr(), wire.MTasks, &wire.Empty{}, &resp); err != nil {
		t.Fatal(err)
	}
	return &resp
}

// writeAPI writes a file through the cluster's client (no mount needed).
func writeAPI(t *testing.T, c *testcluster.Cluster, name string, data []byte) {
	t.Helper()
	ctx := context.Background()
	attr, err := c.Client.Make(ctx, &wire.MakeReq{Parent: 1, Name: name, Mode: syscall.S_IFREG | 0o644})
	if err != nil {
		t.Fatal(err)
	}
	f := c.Client.Open(attr.Ino)
	f.Write(0, data)
	if err := f.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.Release(ctx); err != nil {
		t.Fatal(err)
	}
}
