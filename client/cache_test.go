package client

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/cairn-fs/cairn/internal/block"
)

func bid(i int) block.ID { return block.Sum([]byte(fmt.Sprint("block", i))) }

func cached(c *blockCache, i int) bool { _, ok := c.get(bid(i)); return ok }

// peek reports presence without touching the LRU order.
func peek(c *blockCache, i int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.mu.index[cacheKey{bid(i), -1}]
	return ok
}

func used(c *blockCache) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.used
}

// checkConsistent checks the cache's bookkeeping: the index and the list
// hold the same entries and used is the sum of their sizes, within limit.
func checkConsistent(t *testing.T, c *blockCache) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var sum int64
	n := 0
	for el := c.mu.lru.Front(); el != nil; el = el.Next() {
		e := el.Value.(*cacheEntry)
		if c.mu.index[e.key] != el {
			t.Fatalf("list entry %s not indexed", e.key.id.Short())
		}
		sum += int64(len(e.data))
		n++
	}
	if n != len(c.mu.index) {
		t.Fatalf("list has %d entries, index %d", n, len(c.mu.index))
	}
	if sum != c.mu.used {
		t.Fatalf("used %d, entries sum to %d", c.mu.used, sum)
	}
	if c.mu.used > c.limit {
		t.Fatalf("used %d over limit %d", c.mu.used, c.limit)
	}
}

func TestCacheGetAdd(t *testing.T) {
	c := newBlockCache(1000)
	if _, ok := c.get(bid(1)); ok {
		t.Fatal("empty cache hit")
	}
	data := []byte("hello")
	c.add(bid(1), data)
	got, ok := c.get(bid(1))
	if !ok || !bytes.Equal(got, data) {
		t.Fatalf("get after add: %q %v", got, ok)
	}
	// Adding an ID again keeps the first data and does not double-count.
	c.add(bid(1), []byte("hello"))
	if used(c) != 5 {
		t.Fatalf("used %d after re-adding, want 5", used(c))
	}
	checkConsistent(t, c)
}

func TestCacheEvictsByBytes(t *testing.T) {
	c := newBlockCache(100)
	for i := 0; i < 10; i++ {
		c.add(bid(i), make([]byte, 30))
		checkConsistent(t, c)
	}
	// 100 bytes hold three 30-byte blocks: the three newest.
	for i := 0; i < 10; i++ {
		if want := i >= 7; peek(c, i) != want {
			t.Errorf("block %d cached = %v, want %v", i, peek(c, i), want)
		}
	}
	if used(c) != 90 {
		t.Fatalf("used %d, want 90", used(c))
	}
	// A 70-byte block evicts the two oldest to fit (90+70-60 = 100).
	c.add(bid(100), make([]byte, 70))
	if peek(c, 7) || peek(c, 8) || !peek(c, 9) || !peek(c, 100) || used(c) != 100 {
		t.Fatalf("after a 70-byte add: 7 %v 8 %v 9 %v 100 %v used %d", peek(c, 7), peek(c, 8), peek(c, 9), peek(c, 100), used(c))
	}
	// Exactly the limit fits, evicting everything else.
	c.add(bid(200), make([]byte, 100))
	if !peek(c, 200) || peek(c, 9) || peek(c, 100) || used(c) != 100 {
		t.Fatal("a block of exactly the limit")
	}
	// A block over the limit is not cached and evicts nothing.
	c.add(bid(300), make([]byte, 101))
	if peek(c, 300) || !peek(c, 200) {
		t.Fatal("a block over the limit was cached or evicted others")
	}
	checkConsistent(t, c)
}

func TestCacheLRUOrder(t *testing.T) {
	c := newBlockCache(40)
	for i := 0; i < 4; i++ {
		c.add(bid(i), make([]byte, 10))
	}
	// Touch 0 and 1 (get) and 2 (re-add): 3 becomes the least recent.
	cached(c, 0)
	cached(c, 1)
	c.add(bid(2), make([]byte, 10))
	c.add(bid(4), make([]byte, 10))
	if peek(c, 3) {
		t.Fatal("the least recently used block survived")
	}
	for _, i := range []int{0, 1, 2, 4} {
		if !peek(c, i) {
			t.Fatalf("recently used block %d evicted", i)
		}
	}
	// Now the order, oldest first, is 0 1 2 4: adding two evicts 0 and 1.
	c.add(bid(5), make([]byte, 10))
	c.add(bid(6), make([]byte, 10))
	if peek(c, 0) || peek(c, 1) || !peek(c, 2) || !peek(c, 4) {
		t.Fatal("eviction is not in LRU order")
	}
	// A miss does not disturb anything.
	cached(c, 99)
	checkConsistent(t, c)
}

// TestCacheModel compares the cache with a simple model over random adds
// and gets of random sizes.
func TestCacheModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const limit = 1000
	c := newBlockCache(limit)
	var order []int // least recent first
	sizes := map[int]int{}
	touch := func(i int) {
		for k, v := range order {
			if v == i {
				order = append(order[:k], order[k+1:]...)
				break
			}
		}
		order = append(order, i)
	}
	total := func() int {
		s := 0
		for _, i := range order {
			s += sizes[i]
		}
		return s
	}
	for step := 0; step < 5000; step++ {
		i := rng.IntN(40)
		if rng.IntN(2) == 0 {
			_, ok := c.get(bid(i))
			inModel := false
			for _, v := range order {
				inModel = inModel || v == i
			}
			if ok != inModel {
				t.Fatalf("step %d: get %d = %v, model %v", step, i, ok, inModel)
			}
			if ok {
				touch(i)
			}
			continue
		}
		size := rng.IntN(300)
		if _, ok := sizes[i]; ok {
			size = sizes[i] // an ID always names the same content
		}
		sizes[i] = size
		c.add(bid(i), make([]byte, size))
		if size > limit {
			continue
		}
		touch(i)
		for total() > limit {
			order = order[1:]
		}
		if used(c) != int64(total()) {
			t.Fatalf("step %d: used %d, model %d", step, used(c), total())
		}
		checkConsistent(t, c)
	}
}

func TestCacheConcurrent(t *testing.T) {
	c := newBlockCache(5000)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 9))
			for k := 0; k < 2000; k++ {
				i := rng.IntN(100)
				if data, ok := c.get(bid(i)); ok && len(data) != 10+i {
					t.Errorf("block %d has %d bytes", i, len(data))
					return
				}
				c.add(bid(i), make([]byte, 10+i))
			}
		}(g)
	}
	wg.Wait()
	checkConsistent(t, c)
}
