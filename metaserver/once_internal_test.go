package metaserver

import (
	"context"
	"encoding/binary"
	"runtime"
	"testing"

	"github.com/cairn-fs/cairn/internal/wire"
)

// TestOnceCacheBounded: the duplicate-request cache keeps at most
// onceMax answers however many changes come within onceKeep, and they
// take about the memory the README states (60 MB).
func TestOnceCacheBounded(t *testing.T) {
	var c onceCache
	heap := func() int64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapAlloc)
	}
	answer := func(context.Context, []byte) (wire.Message, error) {
		return &wire.ChangeResp{Attr: wire.Attr{Ino: 7}, Parent: wire.Attr{Ino: 1}}, nil
	}
	before := heap()
	for i := range onceMax + onceMax/4 {
		var id [16]byte
		binary.BigEndian.PutUint64(id[:], uint64(i))
		if _, err := c.do(context.Background(), id, answer, nil); err != nil {
			t.Fatal(err)
		}
	}
	grew := heap() - before
	if n := len(c.mu.answers); n > onceMax {
		t.Fatalf("%d answers kept; want at most %d", n, onceMax)
	}
	t.Logf("%d answers take %d MB", len(c.mu.answers), grew>>20)
	if grew > 80<<20 {
		t.Fatalf("%d answers take %d MB; want at most 80", len(c.mu.answers), grew>>20)
	}
}
