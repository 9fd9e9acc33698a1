package client

import (
	"container/list"
	"sync"

	"github.com/cairn-fs/cairn/internal/block"
)

// blockCache keeps recently used blocks in memory, bounded by bytes.
// Blocks are immutable, so a cached block is never stale.
type blockCache struct {
	limit int64
	mu    struct {
		sync.Mutex
		used  int64
		lru   *list.List // of *cacheEntry, most recent at front
		index map[block.ID]*list.Element
	}
}

type cacheEntry struct {
	id   block.ID
	data []byte
}

func newBlockCache(limit int64) *blockCache {
	c := &blockCache{limit: limit}
	c.mu.lru = list.New()
	c.mu.index = make(map[block.ID]*list.Element)
	return c
}

func (c *blockCache) get(id block.ID) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.mu.index[id]; ok {
		c.mu.lru.MoveToFront(el)
		return el.Value.(*cacheEntry).data, true
	}
	return nil, false
}

func (c *blockCache) add(id block.ID, data []byte) {
	if int64(len(data)) > c.limit {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.mu.index[id]; ok {
		c.mu.lru.MoveToFront(el)
		return
	}
	c.mu.index[id] = c.mu.lru.PushFront(&cacheEntry{id: id, data: data})
	c.mu.used += int64(len(data))
	for c.mu.used > c.limit {
		el := c.mu.lru.Back()
		e := el.Value.(*cacheEntry)
		c.mu.lru.Remove(el)
		delete(c.mu.index, e.id)
		c.mu.used -= int64(len(e.data))
	}
}
