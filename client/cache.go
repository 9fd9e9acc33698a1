package client

import (
	"container/list"
	"sync"

	"github.com/cairn-fs/cairn/internal/block"
)

// blockCache keeps recently used blocks, and verified groups of blocks
// read in slices, in memory, bounded by bytes. Blocks are immutable, so a
// cached block is never stale.
type blockCache struct {
	limit int64
	mu    struct {
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

func (c *blockCache) addKey(k cacheKey, data []byte) {
	if int64(len(data)) > c.limit {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.mu.index[k]; ok {
		c.mu.lru.MoveToFront(el)
		return
	}
	c.mu.index[k] = c.mu.lru.PushFront(&cacheEntry{key: k, data: data})
	c.mu.used += int64(len(data))
	for c.mu.used > c.limit {
		el := c.mu.lru.Back()
		e := el.Value.(*cacheEntry)
		c.mu.lru.Remove(el)
		delete(c.mu.index, e.key)
		c.mu.used -= int64(len(e.data))
	}
}
