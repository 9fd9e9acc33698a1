// Package client is the Go API to a cairn cluster that a mount (or any
// program) uses. It sends namespace operations to the metaserver, cuts
// written data into blocks that it hashes and uploads to the chunkservers
// chosen by placement, commits the resulting extents on flush, and reads
// blocks back (verifying each against its hash) through a memory cache
// and, if configured, a disk cache (diskcache.go).
//
// Consistency: a mount sees its own writes at once; other mounts see them
// after the writer's Flush (close) and their own next Open, which is the
// close-to-open contract. Flush returns only when every block is on disk
// on R chunkservers and the layout is synced in the metaserver.
package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cairn-fs/cairn/internal/cluster"
	"github.com/cairn-fs/cairn/internal/pki"
	"github.com/cairn-fs/cairn/internal/rpc"
	"github.com/cairn-fs/cairn/internal/wire"
)

// Config configures a client. Zero values mean the defaults noted.
type Config struct {
	Meta        string        // metaserver address; required
	CA          *pki.CA       // cluster CA; required
	CacheBytes  int64         // block cache size; 256 MiB if zero
	MaxInflight int           // blocks uploading at once; 8 if zero
	Readahead   int           // blocks prefetched ahead of a sequential reader; 16 if zero
	Replicas    int           // copies of each block this client writes; the cluster's setting if zero
	Timeout     time.Duration // how long to retry an unreachable metaserver; 60s if zero
	Log         *slog.Logger  // slog.Default() if nil

	// KeepUploadsAfter: uploaded blocks older than this are touched on
	// their chunkservers (re-uploaded if gone) before their commit, so
	// that the garbage collector's grace period never runs out on them;
	// 10s if zero, and at most a quarter of the metaserver's grace period.
	KeepUploadsAfter time.Duration

	// CacheDir is where blocks of 64 KiB and more, written or read
	// whole, are kept on local disk (diskcache.go), so that reads that
	// miss the memory cache find them there before the network; none if
	// empty.
	CacheDir string
	// CacheDiskBytes bounds the disk cache; a quarter of the space free
	// in CacheDir at start, at most 10 GiB, if zero.
	CacheDiskBytes int64

	// WarmFileBytes is the largest file that random reads warm whole into
	// the kernel's page cache (fill.go); an eighth of the machine's memory
	// if zero; negative: none.
	WarmFileBytes int64
}

// Client talks to one cluster.
type Client struct {
	cfg          Config
	rpc          *rpc.Client
	cache        *blockCache
	disk         *diskCache // nil without Config.CacheDir
	fetches      singleflight
	fill         fillState     // background block fetches and kernel cache fills (fill.go)
	upload       chan struct{} // semaphore: one token per block in flight
	stop         chan struct{}
	closing      context.Context // canceled by Close: ends background work
	endAll       context.CancelFunc
	wg           sync.WaitGroup // the loops and background work, which Close waits for
	session      uint64         // this client's session in the metaserver (session.go)
	lastLockCall atomic.Uint64  // the number of the last waiting MSetLock (lock.go)

	suspects suspects // chunkservers that recently failed to connect
	names    dirNames // every name of directories this mount made (dirnames.go)
	calls    callCounts
	reads    reads // lookups and getattrs, batched when many are out (reads.go)

	// prefetches bounds the blocks read ahead at once by the whole
	// mount (2 × Readahead), so that many sequential readers do not
	// each have Readahead blocks on their way.
	prefetches chan struct{}

	mu struct {
		sync.Mutex
		cmap     cluster.Map
		replicas int
		files    map[uint64]*File      // open files by inode
		held     map[uint64]*heldInode // special files the kernel holds (held.go)
		// lockOwners lists, by inode, the lock owners that may hold locks
		// there, so that a close by anyone else costs no call (lock.go).
		lockOwners map[uint64]map[uint64]bool
	}
}

// New connects to the metaserver and fetches the cluster map.
func New(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Meta == "" || cfg.CA == nil {
		return nil, errors.New("client: Meta and CA are required")
	}
	if cfg.CacheBytes <= 0 {
		cfg.CacheBytes = 256 << 20
	}
	if cfg.MaxInflight <= 0 {
		cfg.MaxInflight = 8
	}
	if cfg.Readahead <= 0 {
		cfg.Readahead = 16
	}
	if cfg.WarmFileBytes == 0 {
		cfg.WarmFileBytes = physicalMemory() / 8
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.KeepUploadsAfter <= 0 {
		cfg.KeepUploadsAfter = 10 * time.Second
	}
	disk, err := openConfiguredDiskCache(&cfg)
	if err != nil {
		return nil, err
	}
	rpc.CheckUDPBuffers(cfg.Log)
	tlsConf, err := cfg.CA.TLSConfig()
	if err != nil {
		return nil, err
	}
	c := &Client{
		cfg:    cfg,
		rpc:    rpc.NewClient(tlsConf),
		cache:  newBlockCache(cfg.CacheBytes),
		disk:   disk,
		upload: make(chan struct{}, cfg.MaxInflight),
		stop:   make(chan struct{}),
	}
	c.closing, c.endAll = context.WithCancel(context.Background())
	c.cache.overhead = entryOverhead
	c.reads.c = c
	c.prefetches = make(chan struct{}, 2*cfg.Readahead)
	c.session = newSessionID()
	c.fill.warming = make(chan struct{}, maxWarming)
	c.fill.whole = make(chan struct{}, 1)
	c.mu.files = make(map[uint64]*File)
	c.mu.held = make(map[uint64]*heldInode)
	c.mu.lockOwners = make(map[uint64]map[uint64]bool)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := c.refreshMap(ctx); err != nil {
		c.rpc.Close()
		return nil, fmt.Errorf("cannot reach metaserver %s: %w", cfg.Meta, err)
	}
	c.adaptToSettings(ctx)
	c.wg.Add(3)
	go c.mapLoop()
	go c.sessionLoop()
	go c.keepLoop()
	if disk != nil {
		c.wg.Add(1)
		go func() { defer c.wg.Done(); disk.run(c.stop) }()
	}
	return c, nil
}

// Close ends the session (releasing its locks and the files it kept open
// after unlink) and releases connections. Callers flush open files first.
func (c *Client) Close() {
	close(c.stop)
	c.endAll()
	c.wg.Wait()
	c.endSession()
	c.rpc.Close()
}

// goBackground runs fn in a goroutine with a backgroundCtx; Close waits
// for it, so that nothing the client started outlives it (a fetch, a
// fill, an upload).
func (c *Client) goBackground(fn func(ctx context.Context)) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		ctx, cancel := c.backgroundCtx()
		defer cancel()
		fn(ctx)
	}()
}

// backgroundCtx is the context of one piece of background work: it ends
// after cfg.Timeout or when the client closes.
func (c *Client) backgroundCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.closing, c.cfg.Timeout)
}

// meta calls the metaserver, retrying while it is unreachable for up to
// cfg.Timeout (a metaserver restart), then failing with ErrUnavailable.
func (c *Client) meta(ctx context.Context, m wire.Method, req, resp wire.Message) error {
	c.calls.add(m)
	m, req = onceWrap(m, req) // so that a retry is answered, not executed again
	deadline := time.Now().Add(c.cfg.Timeout)
	wait := 50 * time.Millisecond
	for {
		err := c.rpc.Call(ctx, c.cfg.Meta, m, req, resp)
		if !rpc.IsConnError(err) {
			return err
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return wire.Errorf(wire.CodeUnavailable, "metaserver %s: %v", c.cfg.Meta, err)
		}
		c.cfg.Log.Warn("metaserver unreachable; retrying", "meta", c.cfg.Meta, "err", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
		wait = min(wait*2, 2*time.Second)
	}
}

func (c *Client) refreshMap(ctx context.Context) error {
	var resp wire.MapResp
	if err := c.rpc.Call(ctx, c.cfg.Meta, wire.MMap, &wire.Empty{}, &resp); err != nil {
		return err
	}
	c.mu.Lock()
	c.mu.cmap, c.mu.replicas = resp.Map, int(resp.Replicas)
	if c.cfg.Replicas > 0 {
		c.mu.replicas = c.cfg.Replicas
	}
	c.mu.Unlock()
	return nil
}

// mapLoop keeps the cluster map fresh so placement follows membership.
func (c *Client) mapLoop() {
	defer c.wg.Done()
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := c.refreshMap(ctx); err != nil {
				c.cfg.Log.Debug("refresh cluster map", "err", err)
			}
			cancel()
		}
	}
}

// clusterMap returns the current map and replication factor.
func (c *Client) clusterMap() (cluster.Map, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.cmap, c.mu.replicas
}

// singleflight makes concurrent fetches of one key share one call.
type singleflight struct {
	mu    sync.Mutex
	calls map[any]*flight
}

type flight struct {
	done chan struct{}
	val  []byte
	err  error
}

func (g *singleflight) do(key any, fn func() ([]byte, error)) ([]byte, error) {
	g.mu.Lock()
	if g.calls == nil {
		g.calls = make(map[any]*flight)
	}
	if f, ok := g.calls[key]; ok {
		g.mu.Unlock()
		<-f.done
		return f.val, f.err
	}
	f := &flight{done: make(chan struct{})}
	g.calls[key] = f
	g.mu.Unlock()
	f.val, f.err = fn()
	g.mu.Lock()
	delete(g.calls, key)
	g.mu.Unlock()
	close(f.done)
	return f.val, f.err
}

// physicalMemory is the machine's memory in bytes (0 if unknown).
func physicalMemory() int64 {
	var si syscall.Sysinfo_t
	if syscall.Sysinfo(&si) != nil {
		return 0
	}
	return int64(si.Totalram) * int64(si.Unit)
}
