package testcluster

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairn-fs/cairn/chunkserver"
	"github.com/cairn-fs/cairn/internal/rpc"
	"github.com/cairn-fs/cairn/internal/wire"
)

// ChunkDir is the data directory of chunkserver i (0-based).
func (c *Cluster) ChunkDir(i int) string {
	return filepath.Join(c.Dir, fmt.Sprintf("chunk%d", i+1))
}

func (c *Cluster) startChunk(ctx context.Context, i int) (*chunkserver.Server, error) {
	var weight uint64
	if i < len(c.opts.Weights) {
		weight = c.opts.Weights[i]
	}
	return chunkserver.Start(ctx, chunkserver.Config{
		Dir: c.ChunkDir(i), Meta: c.Meta.Addr(), CA: c.CA, Log: c.log, Heartbeat: c.opts.Heartbeat, Weight: weight,
	})
}

// StopChunk stops chunkserver i as a crash would look to its peers: it
// stops answering and heartbeating.
func (c *Cluster) StopChunk(t testing.TB, i int) {
	t.Helper()
	if c.closed == nil {
		c.closed = make(map[int]bool)
	}
	if c.closed[i] {
		return
	}
	c.closed[i] = true
	c.Chunks[i].Close()
}

// StartChunk starts chunkserver i again on its data directory after
// StopChunk, or, with i == len(c.Chunks), adds a new one.
func (c *Cluster) StartChunk(t testing.TB, i int) *chunkserver.Server {
	t.Helper()
	cs, err := c.startChunk(context.Background(), i)
	if err != nil {
		t.Fatalf("start chunkserver %d: %v", i, err)
	}
	if i == len(c.Chunks) {
		c.Chunks = append(c.Chunks, cs)
	} else {
		c.Chunks[i] = cs
	}
	delete(c.closed, i)
	return cs
}

// Fsck runs the metaserver's fsck over QUIC, as `cairn fsck` does (with
// verify, reading every copy), and fails t if the call fails.
func (c *Cluster) Fsck(t testing.TB, verify bool) *wire.FsckResp {
	t.Helper()
	tlsConf, err := c.CA.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	rc := rpc.NewClient(tlsConf)
	defer rc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var r wire.FsckResp
	if err := rc.Call(ctx, c.Meta.Addr(), wire.MFsck, &wire.FsckReq{Verify: verify}, &r); err != nil {
		t.Fatalf("fsck: %v", err)
	}
	return &r
}
