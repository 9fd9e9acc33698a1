// Command mkfiles fills a directory of a running cairn cluster with many
// small files quickly, through the client package (no FUSE): it makes
// the directory under the root and N files in it, each with SIZE bytes
// of its own content (so every file is its own block), from several
// workers at once. It is for measuring a mount's memory while it lists
// or reads such a directory (see scripts/memwatch.sh).
//
//	go run ./scripts/mkfiles -meta 127.0.0.1:7491 -ca DIR/meta/cluster.pem -files 200000 -size 100 NAME
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cairn-fs/cairn/client"
	"github.com/cairn-fs/cairn/internal/pki"
	"github.com/cairn-fs/cairn/internal/wire"
)

func main() {
	meta := flag.String("meta", "127.0.0.1:7420", "metaserver address")
	caPath := flag.String("ca", "", "cluster CA file (required)")
	files := flag.Int("files", 100000, "number of files")
	size := flag.Int("size", 100, "bytes in each file (0: empty files, names only)")
	workers := flag.Int("workers", 16, "files made at once")
	replicas := flag.Int("replicas", 0, "copies of each block (default: the cluster's setting)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: mkfiles -ca FILE [-meta ADDR] [-files N] [-size BYTES] [-workers W] DIRNAME")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 || *caPath == "" || *files < 1 || *size < 0 || *workers < 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*meta, *caPath, flag.Arg(0), *files, *size, *workers, *replicas); err != nil {
		fmt.Fprintln(os.Stderr, "mkfiles:", err)
		os.Exit(1)
	}
}

func run(meta, caPath, name string, files, size, workers, replicas int) error {
	ca, err := pki.Load(caPath)
	if err != nil {
		return err
	}
	ctx := context.Background()
	c, err := client.New(ctx, client.Config{Meta: meta, CA: ca, Replicas: replicas})
	if err != nil {
		return err
	}
	defer c.Close()
	dir, err := c.Make(ctx, &wire.MakeReq{Parent: 1, Name: name, Mode: syscall.S_IFDIR | 0o755})
	if err != nil {
		return fmt.Errorf("mkdir /%s: %w", name, err)
	}
	var next, done atomic.Int64
	var firstErr error
	var errOnce sync.Once
	start := time.Now()
	stop := make(chan struct{})
	go func() { // progress, so a long run shows it is alive
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				n := done.Load()
				fmt.Fprintf(os.Stderr, "mkfiles: %d/%d files, %.0f/s\n", n, files, float64(n)/time.Since(start).Seconds())
			}
		}
	}()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(files) {
					return
				}
				if err := makeFile(ctx, c, dir.Ino, i, size); err != nil {
					errOnce.Do(func() { firstErr = err })
					next.Store(int64(files))
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	close(stop)
	if firstErr != nil {
		return firstErr
	}
	d := time.Since(start)
	fmt.Printf("made %d files of %d bytes in /%s in %v (%.0f/s)\n", files, size, name, d.Round(time.Millisecond), float64(files)/d.Seconds())
	return nil
}

// makeFile creates file i and writes its content: its name, repeated,
// so that no two files share a block.
func makeFile(ctx context.Context, c *client.Client, dir uint64, i int64, size int) error {
	name := fmt.Sprintf("f%08d", i)
	a, err := c.Make(ctx, &wire.MakeReq{Parent: dir, Name: name, Mode: syscall.S_IFREG | 0o644})
	if err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	if size == 0 {
		return nil
	}
	data := make([]byte, size)
	for j := 0; j < size; j += len(name) + 1 {
		copy(data[j:], name+"\n")
	}
	f := c.Open(a.Ino)
	f.Write(0, data)
	err = f.Flush(ctx)
	if rerr := f.Release(ctx); err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}
