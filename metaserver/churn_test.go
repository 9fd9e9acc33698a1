package metaserver_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/cairn-fs/cairn/internal/block"
	"github.com/cairn-fs/cairn/internal/testcluster"
)

// TestGCChurn: writers create, overwrite, rename and delete files whose
// contents come from a small pool (so blocks are shared, freed and
// referenced again all the time) while the collector runs with a short
// grace period and frequent passes. Afterwards every file reads back as
// the model says, fsck finds nothing wrong, and once the grace period is
// over the chunkservers hold exactly the referenced blocks, 3 copies each.
func TestGCChurn(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Chunkservers: 4, GCGrace: time.Second, ReconcileEvery: 100 * time.Millisecond})
	pool := make([][]byte, 10)
	for i := range pool {
		size := 50000 + i*40000
		if i >= 8 {
			size = block.MaxSize + 1000*i // two blocks
		}
		pool[i] = randomBytes(size)
	}
	model := map[string][]byte{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	stop := time.Now().Add(6 * time.Second)
	ops := make([]int, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			name := func() string { return fmt.Sprintf("w%d-%d", w, rng.IntN(6)) }
			for time.Now().Before(stop) {
				n := name()
				var err error
				var set func()
				switch op := rng.IntN(10); {
				case op < 6: // create or overwrite
					data := pool[rng.IntN(len(pool))]
					err = os.WriteFile(c.Path(n), data, 0o644)
					set = func() { model[n] = data }
				case op < 8:
					err = os.Remove(c.Path(n))
					set = func() { delete(model, n) }
				default:
					to := name()
					err = os.Rename(c.Path(n), c.Path(to))
					set = func() {
						if n != to {
							model[to] = model[n]
							delete(model, n)
						}
					}
				}
				if err != nil && !os.IsNotExist(err) {
					t.Errorf("worker %d: %v", w, err)
					return
				}
				if err == nil {
					mu.Lock()
					set()
					mu.Unlock()
				}
				ops[w]++
			}
		}()
	}
	wg.Wait()
	t.Logf("ops per writer: %v; %d files at the end", ops, len(model))
	for name, data := range model {
		checkFile(t, c.Path(name), data)
	}
	time.Sleep(2 * time.Second) // past the grace period: garbage goes
	readAll(t, c, model)
	if r := fsck(t, c); r.ProblemCount != 0 {
		t.Fatalf("fsck after the churn: %v", r.Problems)
	}
	want := map[block.ID]bool{}
	for _, id := range fileBlocks(model) {
		want[id] = true
	}
	waitFor(t, 15*time.Second, "the chunkservers hold exactly the referenced blocks, 3 copies each", func() bool {
		held := map[block.ID]int{}
		for i := range c.Chunks {
			for id := range storedBlocks(t, c, i) {
				held[id]++
			}
		}
		if len(held) != len(want) {
			return false
		}
		for id := range want {
			if copies(c, id) != 3 {
				return false
			}
		}
		return true
	})
}
