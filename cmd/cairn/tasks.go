package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"text/tabwriter"
	"time"

	"github.com/cairn-fs/cairn/internal/pki"
	"github.com/cairn-fs/cairn/internal/rpc"
	"github.com/cairn-fs/cairn/internal/wire"
	"github.com/cairn-fs/cairn/metaserver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// serveMetrics serves reg on http://addr/metrics until the returned
// function is called. An empty addr serves nothing.
func serveMetrics(addr string, reg *prometheus.Registry, log *slog.Logger) (func() error, error) {
	if addr == "" {
		return func() error { return nil }, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server", "addr", addr, "err", err)
		}
	}()
	log.Info("serving metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	return srv.Close, nil
}

func drainCmd(fl *flag.FlagSet) func([]string) error {
	meta := fl.String("meta", defaultMetaAddr, "metaserver address")
	caPath := fl.String("ca", "", "cluster CA file (required)")
	return func(args []string) error {
		if err := wantArgs(args, "CHUNKSERVER"); err != nil {
			return err
		}
		_, rc, err := metaRPC(*caPath)
		if err != nil {
			return err
		}
		defer rc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rc.Call(ctx, *meta, wire.MDrain, &wire.DrainReq{Node: args[0]}, &wire.Empty{}); err != nil {
			return fmt.Errorf("metaserver %s: %w", *meta, err)
		}
		fmt.Printf("draining %s: its blocks move to the other chunkservers; 'cairn status' shows its BLOCKS fall to 0, then stop it\n", args[0])
		return nil
	}
}

// metaRPC loads the cluster CA named by --ca (a usage error if none was
// given) and returns it with an RPC client for the metaserver, which the
// caller closes.
func metaRPC(caPath string) (*pki.CA, *rpc.Client, error) {
	if caPath == "" {
		return nil, nil, usageError{"--ca is required"}
	}
	ca, err := pki.Load(caPath)
	if err != nil {
		return nil, nil, err
	}
	tlsConf, err := ca.TLSConfig()
	if err != nil {
		return nil, nil, err
	}
	return ca, rpc.NewClient(tlsConf), nil
}

// printTasks writes the background work section of `cairn status`.
func printTasks(w io.Writer, t *wire.TasksResp) {
	healthy := 100.0
	if t.Blocks > 0 {
		healthy = 100 * float64(t.Blocks-t.UnderReplicated) / float64(t.Blocks)
	}
	pass := "no pass yet"
	if t.LastPass != 0 {
		pass = fmt.Sprintf("last pass %s ago, took %s", time.Since(time.Unix(0, t.LastPass)).Round(time.Second), time.Duration(t.PassNanos).Round(time.Millisecond))
	}
	fmt.Fprintf(w, "\nblocks %d  under-replicated %d  lost %d  fully replicated %.1f%%  awaiting gc %d  (%s)\n",
		t.Blocks, t.UnderReplicated, t.Lost, healthy, t.Garbage, pass)
	rate := ""
	if t.MoveNanos > 0 {
		rate = fmt.Sprintf(" at %s/s", bytesIEC(uint64(float64(t.BytesMoved)/time.Duration(t.MoveNanos).Seconds())))
	}
	fmt.Fprintf(w, "moved %s%s  reclaimed %s  corrupt copies found %d\n", bytesIEC(t.BytesMoved), rate, bytesIEC(t.BytesReclaimed), t.CorruptFound)
	fmt.Fprintf(w, "data %s in files, %s in distinct blocks (dedup %s), %s stored per copy (compression %s), %s on disks\n\n",
		bytesIEC(t.FileBytes), bytesIEC(t.BlockBytes), ratio(t.FileBytes, t.BlockBytes),
		bytesIEC(t.StoredBytes), ratio(t.BlockBytes, t.StoredBytes), bytesIEC(t.DiskBytes))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TASKS\tQUEUED\tRUNNING\tDONE\tFAILED")
	for _, k := range t.Kinds {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\n", k.Kind, k.Queued, k.Running, k.Done, k.Failed)
	}
	tw.Flush()
}

// bgFlags are the background-work flags of `meta` and `up`.
type bgFlags struct {
	grace, reconcile, scrub *time.Duration
	metrics                 *string
}

func backgroundFlags(fl *flag.FlagSet) bgFlags {
	return bgFlags{
		grace:     fl.Duration("gc-grace", 5*time.Minute, "how long an unreferenced block is kept before it is deleted (writers keep their uploads alive every quarter of it)"),
		reconcile: fl.Duration("reconcile-every", 5*time.Minute, "interval between passes that check every block's copies (repair, rebalance, gc of uncommitted uploads); a chunkserver going down, returning, joining or draining starts one at once"),
		scrub:     fl.Duration("scrub-every", 24*time.Hour, "interval between scrub rounds that re-hash every stored block"),
		metrics:   fl.String("metrics", "", "serve Prometheus metrics on http://ADDR/metrics (e.g. 127.0.0.1:9100)"),
	}
}

// minGrace: clients touch their uploads every quarter of the grace
// period, which must leave room for a commit.
const minGrace = time.Second

func (b bgFlags) apply(cfg *metaserver.Config) error {
	if *b.grace < minGrace {
		return usageError{fmt.Sprintf("--gc-grace %v is too short: at least %v, so that no writer's upload outlives it", *b.grace, minGrace)}
	}
	if *b.reconcile <= 0 || *b.scrub <= 0 {
		return usageError{"--reconcile-every and --scrub-every must be positive"}
	}
	cfg.GCGrace, cfg.ReconcileEvery, cfg.ScrubEvery = *b.grace, *b.reconcile, *b.scrub
	return nil
}

func fsckCmd(fl *flag.FlagSet) func([]string) error {
	meta := fl.String("meta", defaultMetaAddr, "metaserver address")
	caPath := fl.String("ca", "", "cluster CA file (required)")
	timeout := fl.Duration("timeout", time.Hour, "give up after this long")
	verify := fl.Bool("verify", false, "also read and hash every copy of every block (reads all stored data); bad copies are quarantined and replaced")
	return func(args []string) error {
		if err := wantArgs(args); err != nil {
			return err
		}
		_, rc, err := metaRPC(*caPath)
		if err != nil {
			return err
		}
		defer rc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		defer cancel()
		done := make(chan struct{})
		start := time.Now()
		go func() {
			t := time.NewTicker(2 * time.Second)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
					fmt.Fprintf(os.Stderr, "cairn fsck: checking, %v so far\n", time.Since(start).Round(time.Second))
				}
			}
		}()
		fmt.Fprintf(os.Stderr, "cairn fsck: checking the namespace and every block's copies on %s\n", *meta)
		var r wire.FsckResp
		err = rc.Call(ctx, *meta, wire.MFsck, &wire.FsckReq{Verify: *verify}, &r)
		close(done)
		if err != nil {
			return fmt.Errorf("metaserver %s: %w", *meta, err)
		}
		fmt.Printf("%d inodes (%d directories, %d files), %d extents, %d blocks, %d copies, checked in %v\n",
			r.Inodes, r.Dirs, r.Files, r.Extents, r.Blocks, r.Copies, time.Since(start).Round(time.Millisecond))
		for _, p := range r.Problems {
			fmt.Printf("PROBLEM: %s\n", p)
		}
		if r.ProblemCount > uint64(len(r.Problems)) {
			fmt.Printf("… and %d more problems\n", r.ProblemCount-uint64(len(r.Problems)))
		}
		for _, n := range r.Notes {
			fmt.Printf("note: %s\n", n)
		}
		fmt.Printf("%d problems, %d notes\n", r.ProblemCount, r.NoteCount)
		if r.ProblemCount > 0 {
			return fmt.Errorf("%d problems found", r.ProblemCount)
		}
		return nil
	}
}

// ratio shows how many times smaller b is than a ("-" with nothing to compare).
func ratio(a, b uint64) string {
	if a == 0 || b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", float64(a)/float64(b))
}
