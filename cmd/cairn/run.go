package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/cairn-fs/cairn/chunkserver"
	"github.com/cairn-fs/cairn/client"
	"github.com/cairn-fs/cairn/fs"
	"github.com/cairn-fs/cairn/internal/pki"
	"github.com/cairn-fs/cairn/internal/wire"
	"github.com/cairn-fs/cairn/metaserver"
)

// caFile is the name of the cluster CA inside a metaserver's (or up's)
// data directory.
const caFile = "cluster.pem"

// defaultMetaAddr is where "up" and "meta" listen, and where the other
// commands look, unless told otherwise.
const defaultMetaAddr = "127.0.0.1:7420"

func upCmd(fl *flag.FlagSet) func([]string) error {
	replicas := fl.Int("replicas", 3, "copies of each block")
	chunks := fl.Int("chunkservers", 3, "number of chunkservers to run")
	metaAddr := fl.String("meta-addr", defaultMetaAddr, "UDP address the metaserver listens on (port 0 picks a free one)")
	debug := fl.Bool("debug", false, "log every FUSE request")
	bg := backgroundFlags(fl)
	attrTimeout := fl.Duration("attr-timeout", 10*time.Second, "how long the kernel caches names and attributes (opens always see the latest content)")
	downAfter := fl.Duration("down-after", 15*time.Second, "silence after which a chunkserver is marked down")
	memoryMB := memoryFlag(fl, "what the metaserver, the chunkservers and the mount would each have on their own, together")
	disk := newDiskCacheFlags(fl, "DATA_DIR/cache; 'none': no disk cache")
	return func(args []string) error {
		if err := wantArgs(args, "DATA_DIR", "MOUNTPOINT"); err != nil {
			return err
		}
		if *disk.dir == "" {
			*disk.dir = filepath.Join(args[0], "cache")
		}
		if err := disk.check(); err != nil {
			return err
		}
		if *replicas < 1 || *chunks < 1 {
			return usageError{"--replicas and --chunkservers must be at least 1"}
		}
		defaultMB := metaserver.DefaultCacheBytes>>20 + metaBaseMB + *chunks*(chunkserver.DefaultRequestBytes>>20+chunkBaseMB) + 256 + mountBaseMB
		if err := setMemoryLimit(*memoryMB, defaultMB); err != nil {
			return err
		}
		dataDir, mnt := args[0], args[1]
		if err := fs.CheckMountpoint(mnt); err != nil {
			return err
		}
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return fmt.Errorf("data directory: %w", err)
		}
		log := newLogger(*debug)
		ca, created, err := pki.LoadOrCreate(filepath.Join(dataDir, caFile))
		if err != nil {
			return err
		}
		if created {
			log.Info("created cluster CA", "file", filepath.Join(dataDir, caFile))
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()

		var closers closeStack
		defer closers.closeAll(log)
		metaCfg := metaserver.Config{
			Dir: filepath.Join(dataDir, "meta"), Addr: *metaAddr, CA: ca, Replicas: *replicas, Log: log,
			DownAfter: *downAfter,
		}
		if err := bg.apply(&metaCfg); err != nil {
			return err
		}
		meta, err := metaserver.Start(metaCfg)
		if err != nil {
			return err
		}
		closers.push("metaserver", meta.Close)
		stopMetrics, err := serveMetrics(*bg.metrics, meta.Metrics(), log)
		if err != nil {
			return err
		}
		closers.push("metrics", stopMetrics)
		for i := 1; i <= *chunks; i++ {
			cs, err := chunkserver.Start(ctx, chunkserver.Config{
				Dir: filepath.Join(dataDir, fmt.Sprintf("chunk%d", i)), Meta: meta.Addr(), CA: ca, Log: log,
			})
			if err != nil {
				return err
			}
			closers.push("chunkserver "+cs.Addr(), cs.Close)
		}
		cfg := client.Config{Meta: meta.Addr(), CA: ca, Log: log}
		disk.apply(&cfg)
		return serveMount(ctx, &closers, cfg, mnt, fs.Options{Debug: *debug, Log: log, AttrTimeout: *attrTimeout}, log,
			fmt.Sprintf("cairn: cluster in %s (metaserver %s, %d chunkservers, %d replicas)", dataDir, meta.Addr(), *chunks, *replicas))
	}
}

// serveMount mounts the cluster at mnt and serves until a signal or an
// outside unmount, then flushes and unmounts.
func serveMount(ctx context.Context, closers *closeStack, cfg client.Config, mnt string, opts fs.Options, log *slog.Logger, banner string) error {
	c, err := client.New(ctx, cfg)
	if err != nil {
		return err
	}
	closers.push("client", func() error { c.Close(); return nil })
	m, err := fs.New(c, mnt, opts)
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, banner)
	if dir, limit := c.DiskCache(); dir != "" {
		fmt.Fprintf(os.Stderr, "cairn: caching blocks on disk in %s, up to %d MiB (--cache-dir none: no disk cache)\n", dir, limit>>20)
	}
	fmt.Fprintf(os.Stderr, "cairn: mounted at %s; press Ctrl-C to unmount and stop\n", m.Dir())
	unmounted := make(chan struct{})
	go func() { m.Wait(); close(unmounted) }()
	select {
	case <-ctx.Done():
		fmt.Fprintf(os.Stderr, "cairn: flushing and unmounting %s\n", m.Dir())
		closeCtx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := m.Close(closeCtx); err != nil {
			return err
		}
	case <-unmounted:
		if m.DetachIfDead() {
			return fmt.Errorf("the kernel ended the connection of %s (aborted); detached the dead mount", m.Dir())
		}
		fmt.Fprintf(os.Stderr, "cairn: %s was unmounted\n", m.Dir())
	}
	return nil
}

func metaCmd(fl *flag.FlagSet) func([]string) error {
	dataDir := fl.String("data", "", "data directory (required); the cluster CA is created here on first start")
	listen := fl.String("listen", defaultMetaAddr, "UDP address to listen on")
	replicas := fl.Int("replicas", 3, "copies of each block")
	downAfter := fl.Duration("down-after", 15*time.Second, "silence after which a chunkserver is marked down")
	bg := backgroundFlags(fl)
	cacheMB := fl.Int("cache-mb", metaserver.DefaultCacheBytes>>20, "memory in MiB for the namespace store's caches (Badger's table blocks, indexes and Bloom filters)")
	memoryMB := memoryFlag(fl, fmt.Sprintf("--cache-mb + %d (three 64 MiB memtables, the duplicate-request cache, locks and sessions)", metaBaseMB))
	return func(args []string) error {
		if err := wantArgs(args); err != nil {
			return err
		}
		if *dataDir == "" {
			return usageError{"--data is required"}
		}
		if *cacheMB < 1 {
			return usageError{fmt.Sprintf("--cache-mb must be at least 1, got %d", *cacheMB)}
		}
		if err := setMemoryLimit(*memoryMB, *cacheMB+metaBaseMB); err != nil {
			return err
		}
		if err := os.MkdirAll(*dataDir, 0o700); err != nil {
			return fmt.Errorf("data directory: %w", err)
		}
		log := newLogger(false)
		caPath := filepath.Join(*dataDir, caFile)
		ca, _, err := pki.LoadOrCreate(caPath)
		if err != nil {
			return err
		}
		cfg := metaserver.Config{Dir: *dataDir, Addr: *listen, CA: ca, Replicas: *replicas, DownAfter: *downAfter, Log: log,
			CacheBytes: int64(*cacheMB) << 20}
		if err := bg.apply(&cfg); err != nil {
			return err
		}
		s, err := metaserver.Start(cfg)
		if err != nil {
			return err
		}
		stopMetrics, err := serveMetrics(*bg.metrics, s.Metrics(), log)
		if err != nil {
			s.Close()
			return err
		}
		defer stopMetrics()
		fmt.Fprintf(os.Stderr, "cairn: metaserver listening on %s (cluster %s)\ncairn: give every chunkserver and mount the CA file %s (--ca)\n", s.Addr(), ca.ClusterID(), caPath)
		waitSignal()
		return s.Close()
	}
}

func chunkCmd(fl *flag.FlagSet) func([]string) error {
	dataDir := fl.String("data", "", "data directory for blocks (required)")
	listen := fl.String("listen", "127.0.0.1:0", "UDP address to listen on")
	advertise := fl.String("advertise", "", "address others reach this chunkserver at (default: the listen address)")
	meta := fl.String("meta", defaultMetaAddr, "metaserver address")
	caPath := fl.String("ca", "", "cluster CA file made by the metaserver (required)")
	weight := fl.Uint64("weight", 0, "placement weight (default: the disk's size)")
	metrics := fl.String("metrics", "", "serve Prometheus metrics on http://ADDR/metrics (e.g. 127.0.0.1:9101)")
	scrubRate := fl.Int64("scrub-rate", 16<<20, "bytes per second the scrub re-hashes at most")
	receiveMB := fl.Int("receive-mb", chunkserver.DefaultRequestBytes>>20, "memory in MiB for blocks being received at once, from all clients (more wait, held back by QUIC flow control)")
	memoryMB := memoryFlag(fl, fmt.Sprintf("--receive-mb + %d (blocks being sent, 4 MiB each, and 16 MiB of Bao outboards)", chunkBaseMB))
	return func(args []string) error {
		if err := wantArgs(args); err != nil {
			return err
		}
		if *dataDir == "" || *caPath == "" {
			return usageError{"--data and --ca are required"}
		}
		if *receiveMB < 5 {
			return usageError{fmt.Sprintf("--receive-mb must be at least 5 (one block and its request), got %d", *receiveMB)}
		}
		if err := setMemoryLimit(*memoryMB, *receiveMB+chunkBaseMB); err != nil {
			return err
		}
		ca, err := pki.Load(*caPath)
		if err != nil {
			return err
		}
		log := newLogger(false)
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		s, err := chunkserver.Start(ctx, chunkserver.Config{
			Dir: *dataDir, Addr: *listen, Advertise: *advertise, Meta: *meta, CA: ca, Weight: *weight, Log: log,
			ScrubRate: *scrubRate, RequestBytes: int64(*receiveMB) << 20,
		})
		if err != nil {
			return err
		}
		stopMetrics, err := serveMetrics(*metrics, s.Metrics(), log)
		if err != nil {
			s.Close()
			return err
		}
		defer stopMetrics()
		fmt.Fprintf(os.Stderr, "cairn: chunkserver %s listening on %s, registered with %s\n", s.ID(), s.Addr(), *meta)
		<-ctx.Done()
		return s.Close()
	}
}

func mountCmd(fl *flag.FlagSet) func([]string) error {
	meta := fl.String("meta", defaultMetaAddr, "metaserver address")
	caPath := fl.String("ca", "", "cluster CA file made by the metaserver (required)")
	cacheMB := fl.Int("cache-mb", 256, "memory in MiB for the cache of blocks read and written (counting 200 bytes per block besides its data)")
	replicas := fl.Int("replicas", 0, "copies of each block this mount writes (default: the cluster's setting)")
	timeout := fl.Duration("timeout", 60*time.Second, "how long to retry an unreachable metaserver before failing a call")
	debug := fl.Bool("debug", false, "log every FUSE request")
	attrTimeout := fl.Duration("attr-timeout", 10*time.Second, "how long the kernel caches names and attributes (opens always see the latest content)")
	memoryMB := memoryFlag(fl, fmt.Sprintf("--cache-mb + %d (8 blocks uploading, the kernel's requests, open files and directories)", mountBaseMB))
	disk := newDiskCacheFlags(fl, "none")
	return func(args []string) error {
		if err := wantArgs(args, "MOUNTPOINT"); err != nil {
			return err
		}
		if err := disk.check(); err != nil {
			return err
		}
		if *caPath == "" {
			return usageError{"--ca is required"}
		}
		if *cacheMB < 1 {
			return usageError{fmt.Sprintf("--cache-mb must be at least 1, got %d", *cacheMB)}
		}
		if err := setMemoryLimit(*memoryMB, *cacheMB+mountBaseMB); err != nil {
			return err
		}
		if *replicas < 0 {
			return usageError{"--replicas must be at least 1"}
		}
		if err := fs.CheckMountpoint(args[0]); err != nil {
			return err
		}
		ca, err := pki.Load(*caPath)
		if err != nil {
			return err
		}
		log := newLogger(*debug)
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		var closers closeStack
		defer closers.closeAll(log)
		cfg := client.Config{Meta: *meta, CA: ca, CacheBytes: int64(*cacheMB) << 20, Replicas: *replicas, Timeout: *timeout, Log: log}
		disk.apply(&cfg)
		return serveMount(ctx, &closers, cfg, args[0], fs.Options{Debug: *debug, Log: log, AttrTimeout: *attrTimeout}, log, "cairn: cluster at "+*meta)
	}
}

func statusCmd(fl *flag.FlagSet) func([]string) error {
	meta := fl.String("meta", defaultMetaAddr, "metaserver address")
	caPath := fl.String("ca", "", "cluster CA file (required; for 'cairn up DATA_DIR' it is DATA_DIR/"+caFile+")")
	return func(args []string) error {
		if err := wantArgs(args); err != nil {
			return err
		}
		ca, rc, err := metaRPC(*caPath)
		if err != nil {
			return err
		}
		defer rc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var m wire.MapResp
		if err := rc.Call(ctx, *meta, wire.MMap, &wire.Empty{}, &m); err != nil {
			return fmt.Errorf("metaserver %s: %w", *meta, err)
		}
		var st wire.StatFSResp
		if err := rc.Call(ctx, *meta, wire.MStatFS, &wire.Empty{}, &st); err != nil {
			return fmt.Errorf("metaserver %s: %w", *meta, err)
		}
		fmt.Printf("cluster %s  metaserver %s  epoch %d  replicas %d\n", ca.ClusterID(), *meta, m.Map.Epoch, m.Replicas)
		fmt.Printf("capacity %s usable, %s free, %d inodes\n\n", bytesIEC(st.Total), bytesIEC(st.Free), st.Inodes)
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		var tasks wire.TasksResp
		if err := rc.Call(ctx, *meta, wire.MTasks, &wire.Empty{}, &tasks); err != nil {
			return fmt.Errorf("metaserver %s: %w", *meta, err)
		}
		perNode := map[string]wire.NodeTasks{}
		for _, n := range tasks.Nodes {
			perNode[n.ID] = n
		}
		fmt.Fprintln(tw, "CHUNKSERVER\tADDRESS\tSTATE\tUSED\tTOTAL\tWEIGHT\tBLOCKS\tTASKS\tSCRUBBED")
		for _, n := range m.Map.Nodes {
			nt := perNode[n.ID]
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", n.ID, n.Addr, n.State, bytesIEC(n.Used), bytesIEC(n.Total), n.Weight,
				nt.Blocks, nt.Running, bytesIEC(nt.Scrubbed))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		printTasks(os.Stdout, &tasks)
		return nil
	}
}

func bytesIEC(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for v := n / unit; v >= unit; v /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func waitSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	<-ch
	signal.Stop(ch)
}

// closeStack closes what was started, in reverse order.
type closeStack []struct {
	name string
	fn   func() error
}

func (s *closeStack) push(name string, fn func() error) {
	*s = append(*s, struct {
		name string
		fn   func() error
	}{name, fn})
}

func (s *closeStack) closeAll(log *slog.Logger) {
	for i := len(*s) - 1; i >= 0; i-- {
		if err := (*s)[i].fn(); err != nil && !errors.Is(err, context.Canceled) {
			log.Warn("stop "+(*s)[i].name, "err", strings.TrimSpace(err.Error()))
		}
	}
	*s = nil
}

// diskCacheFlags are a mount's flags for its disk cache of blocks.
type diskCacheFlags struct {
	dir *string
	mb  *int
}

func newDiskCacheFlags(fl *flag.FlagSet, defaultDir string) diskCacheFlags {
	return diskCacheFlags{
		dir: fl.String("cache-dir", "", "directory where blocks written or read are also cached on local disk, verified on every read (default "+defaultDir+")"),
		mb:  fl.Int("cache-disk-mb", 0, "size in MiB of the disk cache (default: a quarter of the space free in --cache-dir at start, at most 10240)"),
	}
}

func (d diskCacheFlags) check() error {
	if *d.mb < 0 {
		return usageError{fmt.Sprintf("--cache-disk-mb must be at least 0, got %d", *d.mb)}
	}
	return nil
}

// apply sets cfg's disk cache from the flags: none if --cache-dir is
// empty or "none".
func (d diskCacheFlags) apply(cfg *client.Config) {
	if *d.dir != "" && *d.dir != "none" {
		cfg.CacheDir, cfg.CacheDiskBytes = *d.dir, int64(*d.mb)<<20
	}
}
