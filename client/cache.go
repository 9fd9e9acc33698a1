package client

import (
	"container/list"
	"slices"
	"sync"

	"github.com/cairn-fs/cairn/internal/block"
)

// blockCache keeps recently used blocks, and verified groups of blocks
// read in slices, in memory, bounded by bytes. Blocks are immutable, so a
// cached block is never stale.
type blockCache struct {
	limit int64
	// overhead is counted for each entry besides its bytes (0 in tests
	// of the byte arithmetic; entryOverhead in a client).
	overhead int64
	mu       struct {
		sync.Mutex
		used  int64
		lru   *list.List // of *cacheEntry, most recent at front
		index map[cacheKey]*list.Element
	}
}

// cacheKey names a whole block (group -1) or one block.SliceGroup-sized
// group of it.
type cacheKey struct {
	id    block.ID
	group int32
}

type cacheEntry struct {
	key  cacheKey
	data []byte
}

func newBlockCache(limit int64) *blockCache {
	c := &blockCache{limit: limit}
	c.mu.lru = list.New()
	c.mu.index = make(map[cacheKey]*list.Element)
	return c
}

func (c *blockCache) get(id block.ID) ([]byte, bool) { return c.getKey(cacheKey{id, -1}) }

func (c *blockCache) add(id block.ID, data []byte) { c.addKey(cacheKey{id, -1}, data) }

func (c *blockCache) getKey(k cacheKey) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.mu.index[k]; ok {
		c.mu.lru.MoveToFront(el)
		return el.Value.(*cacheEntry).data, true
	}
	return nil, false
}

// entryOverhead is what an entry costs besides its bytes (the list
// element, the index entry, the slice header), so that a cache of many
// small blocks (a million files of 100 bytes) stays within its limit too.
const entryOverhead = 200

func (c *blockCache) addKey(k cacheKey, data []byte) {
	if int64(len(data)) > c.limit {
		return
	}
	if cap(data)-len(data) > len(data)/4 {
		// A block that did not fill its buffer (a writer's last block of
		// a file, allocated at full size) would pin all of it: keep a
		// copy of what it holds.
		data = slices.Clone(data)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.mu.index[k]; ok {
		c.mu.lru.MoveToFront(el)
		return
	}
	c.mu.index[k] = c.mu.lru.PushFront(&cacheEntry{key: k, data: data})
	c.mu.used += int64(len(data)) + c.overhead
	for c.mu.used > c.limit {
		el := c.mu.lru.Back()
		e := el.Value.(*cacheEntry)
		c.mu.lru.Remove(el)
		delete(c.mu.index, e.key)
		c.mu.used -= int64(len(e.data)) + c.overhead
	}
}
