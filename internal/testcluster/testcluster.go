// Package testcluster starts a whole cairn cluster in one process for
// tests: a metaserver, chunkservers and (unless asked not to) a real FUSE
// mount in a temporary directory, all on loopback. Cleanup stops
// everything and unmounts, also when the test fails.
package testcluster

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-fs/cairn/chunkserver"
	"github.com/cairn-fs/cairn/client"
	"github.com/cairn-fs/cairn/fs"
	"github.com/cairn-fs/cairn/internal/pki"
	"github.com/cairn-fs/cairn/metaserver"
)

// Options shape the cluster. Zero values mean the defaults noted.
type Options struct {
	Chunkservers int           // 3 if zero
	Replicas     int           // 3 if zero
	NoMount      bool          // start the client but do not mount
	Dir          string        // data directory; a fresh temporary one if empty (pass an old one to restart)
	SessionTTL   time.Duration // metaserver client session lease; the metaserver's default if zero

	// Background work and failure detection; the metaserver's defaults if zero.
	GCGrace        time.Duration
	ReconcileEvery time.Duration
	ScrubEvery     time.Duration
	DownAfter      time.Duration
	Heartbeat      time.Duration // chunkservers' heartbeat interval
	Weights        []uint64      // placement weight of chunkserver i; its disk's size if absent or zero

	KeepUploadsAfter time.Duration // the client's; its default if zero
	AttrTimeout      time.Duration // the mounts' kernel attribute cache; fs's default if zero
	WarmFileBytes    int64         // the clients' largest file warmed whole; their default if zero
	CacheDir         string        // the first client's disk cache; none if empty
	CacheDiskBytes   int64         // its size; the client's default if zero
}

// Cluster is a running in-process cluster.
type Cluster struct {
	Dir      string
	CA       *pki.CA
	Meta     *metaserver.Server
	Chunks   []*chunkserver.Server
	Client   *client.Client
	Mount    *fs.Mount
	MountDir string // where the filesystem is mounted ("" with NoMount)

	opts    Options
	stopped bool
	extra   []*extraMount
	log     *slog.Logger // to the test log (testWriter), for every part and mount
	closed  map[int]bool // chunkservers stopped by StopChunk
}

type extraMount struct {
	client *client.Client
	mount  *fs.Mount
}

// Start starts a cluster and registers its Stop with t.Cleanup.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Chunkservers == 0 {
		opts.Chunkservers = 3
	}
	if opts.Replicas == 0 {
		opts.Replicas = 3
	}
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	c := &Cluster{Dir: opts.Dir, opts: opts,
		log: slog.New(slog.NewTextHandler(newTestWriter(t), &slog.HandlerOptions{Level: slog.LevelWarn}))}
	t.Cleanup(c.Stop) // runs before the writer's cleanup, so what Stop logs is in the test log
	if err := c.start(t); err != nil {
		t.Fatalf("start test cluster: %v", err)
	}
	return c
}

func (c *Cluster) start(t testing.TB) error {
	ca, _, err := pki.LoadOrCreate(filepath.Join(c.Dir, "cluster.pem"))
	if err != nil {
		return err
	}
	c.CA = ca
	c.Meta, err = metaserver.Start(metaserver.Config{
		Dir: filepath.Join(c.Dir, "meta"), CA: ca, Replicas: c.opts.Replicas, Log: c.log,
		SessionTTL: c.opts.SessionTTL,
		GCGrace:    c.opts.GCGrace, ReconcileEvery: c.opts.ReconcileEvery, ScrubEvery: c.opts.ScrubEvery, DownAfter: c.opts.DownAfter,
	})
	if err != nil {
		return err
	}
	ctx := context.Background()
	for i := range c.opts.Chunkservers {
		cs, err := c.startChunk(ctx, i)
		if err != nil {
			return err
		}
		c.Chunks = append(c.Chunks, cs)
	}
	c.Client, err = client.New(ctx, client.Config{Meta: c.Meta.Addr(), CA: ca, Log: c.log, Timeout: 20 * time.Second,
		KeepUploadsAfter: c.opts.KeepUploadsAfter, WarmFileBytes: c.opts.WarmFileBytes,
		CacheDir: c.opts.CacheDir, CacheDiskBytes: c.opts.CacheDiskBytes})
	if err != nil {
		return err
	}
	if c.opts.NoMount {
		return nil
	}
	c.MountDir = filepath.Join(c.Dir, "mnt")
	if err := os.MkdirAll(c.MountDir, 0o755); err != nil {
		return err
	}
	c.Mount, err = fs.New(c.Client, c.MountDir, fs.Options{Log: c.log, AttrTimeout: c.opts.AttrTimeout})
	return err
}

// Stop unmounts and stops every part. It is safe to call twice.
func (c *Cluster) Stop() {
	if c.stopped {
		return
	}
	c.stopped = true
	for _, m := range c.extra {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		m.mount.Close(ctx)
		cancel()
		m.client.Close()
	}
	if c.Mount != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		c.Mount.Close(ctx)
		cancel()
	} else if c.MountDir != "" {
		syscall.Unmount(c.MountDir, syscall.MNT_DETACH) // a half-started mount
	}
	if c.Client != nil {
		c.Client.Close()
	}
	for i, cs := range c.Chunks {
		if !c.closed[i] {
			cs.Close()
		}
	}
	if c.Meta != nil {
		c.Meta.Close()
	}
}

// Restart stops the cluster and starts it again on the same data.
func (c *Cluster) Restart(t testing.TB) {
	t.Helper()
	c.Stop()
	*c = Cluster{Dir: c.Dir, opts: c.opts, log: c.log}
	if err := c.start(t); err != nil {
		t.Fatalf("restart test cluster: %v", err)
	}
}

// AddMount starts another client of the cluster and mounts it on a fresh
// directory, as a second machine would; Stop unmounts it. It returns the
// client and the mountpoint.
func (c *Cluster) AddMount(t testing.TB) (*client.Client, string) {
	t.Helper()
	cl, err := client.New(context.Background(), client.Config{Meta: c.Meta.Addr(), CA: c.CA, Log: c.log, Timeout: 20 * time.Second,
		WarmFileBytes: c.opts.WarmFileBytes})
	if err != nil {
		t.Fatalf("second client: %v", err)
	}
	dir := filepath.Join(c.Dir, fmt.Sprintf("mnt%d", len(c.extra)+2))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		cl.Close()
		t.Fatal(err)
	}
	m, err := fs.New(cl, dir, fs.Options{Log: c.log, AttrTimeout: c.opts.AttrTimeout})
	if err != nil {
		cl.Close()
		t.Fatalf("second mount: %v", err)
	}
	c.extra = append(c.extra, &extraMount{client: cl, mount: m})
	return cl, dir
}

// Path joins elem onto the mountpoint.
func (c *Cluster) Path(elem ...string) string {
	return filepath.Join(append([]string{c.MountDir}, elem...)...)
}

// testWriter sends server logs to the test log, shown on failure. What
// is logged once the test has ended, by something that outlived it, goes
// to stderr instead: the testing package panics at a Log that late.
type testWriter struct {
	t     testing.TB
	mu    sync.Mutex
	ended bool
}

func newTestWriter(t testing.TB) *testWriter {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.ended = true
		w.mu.Unlock()
	})
	return w
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ended {
		fmt.Fprintf(os.Stderr, "logged after %s ended: %s", w.t.Name(), p)
		return len(p), nil
	}
	w.t.Log(string(p))
	return len(p), nil
}
