package client

import (
	"container/list"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cairn-fs/cairn/internal/block"
	"github.com/cairn-fs/cairn/internal/directio"
	"lukechampine.com/blake3/bao"
)

// diskCache keeps the big blocks a mount writes or fetches whole in files
// on local disk, bounded by bytes, so that a read that misses the memory
// cache finds them there before the network: reading back a file just
// written, or refilling the kernel's page cache with a file it dropped,
// then costs a local read instead of QUIC round trips (1 GiB read after
// dropping caches through `cairn up`: 440-600 MiB/s right after writing
// it, 780-830 on a re-read, against 160-260 without the disk cache).
//
// Blocks are immutable and named by their hash, so an entry is never
// stale; it can only rot. Every read of an entry is verified against the
// block's ID like a chunkserver's answer, and an entry that fails is
// removed and logged, and the read goes on to the network. Nothing about
// the disk cache can fail a read: an entry that cannot be read is a miss,
// and a block that cannot be written (ENOSPC, any error) is not cached.
//
// An entry is one file, DIR/xx/ID (xx: the ID's first byte in hex), that
// holds the block's Bao outboard (which starts with the block's length)
// followed by its bytes, so that a small read takes a verified slice of
// the groups it needs, as from a chunkserver, without reading and hashing
// the whole block. Files are written to a temporary name and renamed, so
// a crash leaves whole entries or temporary files, which the next start
// removes; they are not fsynced, as a torn entry fails its hash and is
// dropped. The index (ID, size, recency) is in memory, rebuilt at start
// by scanning the directory, the oldest modification time least recent;
// the bytes are never kept or mapped in memory beyond the read at hand.
type diskCache struct {
	dir   string
	limit int64
	log   *slog.Logger
	queue chan diskWrite // blocks waiting for the writer (run)

	// fullUntil (Unix nanoseconds) stops writes for a while after the
	// disk was full, so that a full disk costs one failed write a minute.
	fullUntil atomic.Int64

	mu struct {
		sync.Mutex
		used  int64      // bytes of the entries in index, and of the one being written
		lru   *list.List // of *diskEntry, most recent at front
		index map[block.ID]*list.Element
	}
}

type diskEntry struct {
	id   block.ID
	size int64 // bytes on disk, in whole 4 KiB pages
}

type diskWrite struct {
	id             block.ID
	data, outboard []byte
}

// minDiskEntry is the smallest block the disk cache keeps. Each entry is
// a file, and creating a file on this machine's ext4 costs 0.2-0.5 ms of
// kernel time, as much as fetching a small block again: with every block
// cached, a first `tar c` of Go's source tree (11,500 files, most a few
// KiB) took 13.3 s against 12.2 s without the cache. Small files stay in
// the memory cache and the kernel's page cache.
const minDiskEntry = 64 << 10

// wants reports whether a block of n bytes would be cached. A nil
// *diskCache (no disk cache) wants none.
func (d *diskCache) wants(n int) bool { return d != nil && n >= minDiskEntry }

// diskQueue bounds the blocks waiting to be written: neither a reader nor
// a writer waits for the disk cache, and what waits is at most 4 blocks
// of memory. A block that finds the queue full is not cached.
const diskQueue = 4

// fullPause is how long the disk cache stops writing after ENOSPC.
const fullPause = time.Minute

// tmpPrefix starts the names of entries being written.
const tmpPrefix = ".tmp-"

// openDiskCache opens (creating it if needed) the disk cache in dir,
// bounded by limit bytes, and indexes the entries found there, removing
// leftover temporary files and the least recent entries over limit.
func openDiskCache(dir string, limit int64, log *slog.Logger) (*diskCache, error) {
	d := &diskCache{dir: dir, limit: limit, log: log, queue: make(chan diskWrite, diskQueue)}
	d.mu.lru = list.New()
	d.mu.index = make(map[block.ID]*list.Element)
	for i := range 256 {
		if err := os.MkdirAll(filepath.Join(dir, fmt.Sprintf("%02x", i)), 0o700); err != nil {
			return nil, fmt.Errorf("disk cache: %w", err)
		}
	}
	if err := d.scan(); err != nil {
		return nil, fmt.Errorf("disk cache: %w", err)
	}
	d.mu.Lock()
	d.evictLocked(0)
	d.mu.Unlock()
	return d, nil
}

// scan indexes the entries in the cache directory, least recently
// modified at the back, and removes temporary files.
func (d *diskCache) scan() error {
	type found struct {
		diskEntry
		mtime time.Time
	}
	var entries []found
	err := filepath.WalkDir(d.dir, func(path string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		if strings.HasPrefix(de.Name(), tmpPrefix) {
			return os.Remove(path)
		}
		id, ok := parseEntryName(de.Name())
		if !ok || filepath.Dir(path) != filepath.Dir(d.path(id)) {
			return nil // not ours
		}
		info, err := de.Info()
		if err != nil {
			return nil // gone meanwhile
		}
		entries = append(entries, found{diskEntry{id, pages(info.Size())}, info.ModTime()})
		return nil
	})
	if err != nil {
		return err
	}
	slices.SortFunc(entries, func(a, b found) int { return a.mtime.Compare(b.mtime) })
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, e := range entries {
		d.mu.index[e.id] = d.mu.lru.PushFront(&diskEntry{e.id, e.size})
		d.mu.used += e.size
	}
	return nil
}

func parseEntryName(name string) (block.ID, bool) {
	var id block.ID
	if len(name) != 2*len(id) {
		return id, false
	}
	_, err := hex.Decode(id[:], []byte(name))
	return id, err == nil
}

// pages rounds n up to whole 4 KiB pages, what a file takes on disk.
func pages(n int64) int64 { return (n + 4095) &^ 4095 }

func (d *diskCache) path(id block.ID) string {
	s := id.String()
	return filepath.Join(d.dir, s[:2], s)
}

// has reports whether block id has an entry, and makes it the most recent.
func (d *diskCache) has(id block.ID) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	el, ok := d.mu.index[id]
	if ok {
		d.mu.lru.MoveToFront(el)
	}
	return ok
}

// get returns block id's verified bytes from its entry, if it has one
// that verifies. A nil *diskCache (no disk cache) has no entries.
func (d *diskCache) get(id block.ID) ([]byte, bool) {
	if d == nil || !d.has(id) {
		return nil, false
	}
	data, err := d.read(id)
	if err != nil {
		d.drop(id, err)
		return nil, false
	}
	if !id.Verify(data) {
		d.drop(id, errCorruptEntry)
		return nil, false
	}
	return data, true
}

// getGroups returns the verified bytes [off, off+n) of block id, which
// is blockLen bytes long, from its entry, if it has one whose groups there
// verify. off is a multiple of block.SliceGroup, and off+n one too or
// blockLen, as fetchGroups asks. It reads only the outboard and those
// groups, and checks them against the ID in place (bao.VerifyChunk): a
// random reader's miss costs four system calls and a hash of the groups.
func (d *diskCache) getGroups(id block.ID, blockLen, off, n uint64) ([]byte, bool) {
	if d == nil || !d.has(id) {
		return nil, false
	}
	f, err := os.Open(d.path(id))
	if err != nil {
		d.drop(id, err)
		return nil, false
	}
	defer f.Close()
	// The outboard starts with the block's length, which the ID covers.
	outboard := make([]byte, bao.EncodedSize(int(blockLen), block.SliceGroupLog, true))
	groups := make([]byte, n)
	if _, err := f.ReadAt(outboard, 0); err != nil {
		d.drop(id, err)
		return nil, false
	}
	if _, err := f.ReadAt(groups, int64(len(outboard))+int64(off)); err != nil {
		d.drop(id, err)
		return nil, false
	}
	if !bao.VerifyChunk(groups, outboard, block.SliceGroupLog, off, id) {
		d.drop(id, errCorruptEntry)
		return nil, false
	}
	return groups, true
}

var errCorruptEntry = errors.New("entry fails its hash")

// maxEntry is the size of the largest entry: a block of block.MaxSize
// bytes after its outboard.
var maxEntry = int64(bao.EncodedSize(block.MaxSize, block.SliceGroupLog, true) + block.MaxSize)

// read returns the block bytes of id's entry, unverified, checked against
// the length the outboard starts with. It reads the whole entry in one
// read, with direct I/O where it can: a block is read once into the
// memory cache, and the page cache would hold a second copy, at the cost
// of one more copy of the bytes.
func (d *diskCache) read(id block.ID) ([]byte, error) {
	f, direct, err := directio.Open(d.path(id))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if info.Size() < 8 || info.Size() > maxEntry {
		return nil, errCorruptEntry
	}
	entry, err := directio.ReadAt(f, direct, 0, int(info.Size()))
	if err != nil {
		return nil, err
	}
	n := binary.LittleEndian.Uint64(entry)
	if n > block.MaxSize {
		return nil, errCorruptEntry
	}
	obSize := int64(bao.EncodedSize(int(n), block.SliceGroupLog, true))
	if info.Size() != obSize+int64(n) {
		return nil, errCorruptEntry
	}
	return entry[obSize:], nil
}

// drop removes block id's entry after a failed read: a corrupt one is
// logged; one that vanished is only forgotten.
func (d *diskCache) drop(id block.ID, err error) {
	d.forget(id)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if errors.Is(err, errCorruptEntry) || errors.Is(err, io.EOF) {
		d.log.Warn("disk cache entry fails its hash; removed, the block is fetched again", "block", id.String(), "file", d.path(id))
	} else {
		d.log.Warn("disk cache entry unreadable; removed", "block", id.String(), "file", d.path(id), "err", err)
	}
	if err := os.Remove(d.path(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		d.log.Warn("disk cache: cannot remove entry", "file", d.path(id), "err", err)
	}
}

func (d *diskCache) forget(id block.ID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if el, ok := d.mu.index[id]; ok {
		d.mu.lru.Remove(el)
		delete(d.mu.index, id)
		d.mu.used -= el.Value.(*diskEntry).size
	}
}

// put queues data, block id's verified bytes, and their outboard to be
// written in the background, unless the block is small, it has an entry,
// the queue is full or the disk was full lately.
func (d *diskCache) put(id block.ID, data, outboard []byte) {
	if !d.wants(len(data)) || time.Now().UnixNano() < d.fullUntil.Load() || d.has(id) {
		return
	}
	select {
	case d.queue <- diskWrite{id, data, outboard}:
	default:
	}
}

// run writes the queued blocks until stop is closed.
func (d *diskCache) run(stop <-chan struct{}) {
	for {
		select {
		case w := <-d.queue:
			d.write(w)
		case <-stop:
			return
		}
	}
}

// write stores w's entry: it makes room for it (evicting the least
// recent entries), writes it to a temporary file and renames that into
// place.
func (d *diskCache) write(w diskWrite) {
	id := w.id
	if d.has(id) {
		return
	}
	size := pages(int64(len(w.outboard) + len(w.data)))
	if !d.reserve(size) {
		return
	}
	if err := d.writeFile(id, w.outboard, w.data); err != nil {
		d.release(size)
		if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
			d.fullUntil.Store(time.Now().Add(fullPause).UnixNano())
			d.log.Warn("disk cache: disk full; not caching for a while", "dir", d.dir, "pause", fullPause)
		} else {
			d.log.Warn("disk cache: cannot write entry", "block", id.String(), "err", err)
		}
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.mu.index[id] = d.mu.lru.PushFront(&diskEntry{id, size})
}

// entryFiles writes entries with direct I/O (internal/directio): an
// entry is written as its block is written or first read, and a buffered
// write cost a first read an eighth of its throughput (a 1 GiB sequential read
// through `cairn up`, 177-182 MiB/s against 195-223 without the cache)
// and a sixth more CPU, for pages nobody reads until the kernel has
// dropped the file's own. A whole entry is read directly too (read); a
// random reader's groups are read buffered, and the page cache keeps the
// outboard that each of its reads needs.
var entryFiles = directio.NewWriter(int(maxEntry))

func (d *diskCache) writeFile(id block.ID, outboard, data []byte) error {
	f, direct, err := directio.CreateTemp(filepath.Dir(d.path(id)), tmpPrefix)
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = entryFiles.Write(f, direct, outboard, data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, d.path(id))
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// reserve counts size bytes for an entry about to be written, evicting
// the least recent entries to stay within the limit. It reports false if
// the entry could never fit.
func (d *diskCache) reserve(size int64) bool {
	if size > d.limit {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.evictLocked(size)
	d.mu.used += size
	return true
}

func (d *diskCache) release(size int64) {
	d.mu.Lock()
	d.mu.used -= size
	d.mu.Unlock()
}

// evictLocked removes the least recent entries until room more bytes fit
// within the limit.
func (d *diskCache) evictLocked(room int64) {
	for d.mu.used+room > d.limit && d.mu.lru.Len() > 0 {
		e := d.mu.lru.Remove(d.mu.lru.Back()).(*diskEntry)
		delete(d.mu.index, e.id)
		d.mu.used -= e.size
		if err := os.Remove(d.path(e.id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			d.log.Warn("disk cache: cannot remove entry", "file", d.path(e.id), "err", err)
		}
	}
}

// defaultDiskCacheBytes is the disk cache's size when none is configured:
// a quarter of the space free in dir, at most 10 GiB.
func defaultDiskCacheBytes(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("disk cache: %w", err)
	}
	return min(int64(st.Bavail)*st.Bsize/4, 10<<30), nil
}

// openConfiguredDiskCache opens the disk cache cfg asks for, if any,
// filling in its default size.
func openConfiguredDiskCache(cfg *Config) (*diskCache, error) {
	if cfg.CacheDir == "" {
		return nil, nil
	}
	if err := os.MkdirAll(cfg.CacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("disk cache: %w", err)
	}
	if cfg.CacheDiskBytes <= 0 {
		var err error
		if cfg.CacheDiskBytes, err = defaultDiskCacheBytes(cfg.CacheDir); err != nil {
			return nil, err
		}
	}
	return openDiskCache(cfg.CacheDir, cfg.CacheDiskBytes, cfg.Log)
}

// DiskCache returns the disk cache's directory and its size limit in
// bytes; "" if the client has none.
func (c *Client) DiskCache() (dir string, limit int64) {
	if c.disk == nil {
		return "", 0
	}
	return c.disk.dir, c.disk.limit
}
