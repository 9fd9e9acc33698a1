package main

import (
	"flag"
	"fmt"
	"runtime/debug"
)

// Each process's memory is bounded by construction — caches of a fixed
// size, a bounded number of blocks in flight, open directories that keep
// a few pages — and --memory-mb states the limit it is meant to stay
// within. It is Go's soft memory limit: the garbage collector runs more
// often as the process nears it, instead of letting the heap grow to
// twice what is live (the default). It is not a hard cap: a process
// whose live memory passed it would keep running, collecting often.

// Default limits, in MiB, beyond what the cache flags add. They cover
// for the mount 8 blocks uploading (4 MiB each, with their copies in
// the QUIC send buffers), the kernel's requests (1 MiB each), open
// directories and Go's own overhead; for the metaserver three Badger
// memtables of 64 MiB and the duplicate-request cache; for a
// chunkserver, besides the blocks being received (--receive-mb), the
// blocks being sent (4 MiB each) and the Bao outboards.
const (
	mountBaseMB = 256
	metaBaseMB  = 384
	chunkBaseMB = 128
)

func memoryFlag(fl *flag.FlagSet, what string) *int {
	return fl.Int("memory-mb", 0, "memory limit in MiB (Go's soft limit: the GC works harder near it); default "+what)
}

// setMemoryLimit sets the process's soft memory limit to mb MiB, or to
// def MiB if mb is 0.
func setMemoryLimit(mb, def int) error {
	if mb < 0 {
		return usageError{fmt.Sprintf("--memory-mb must not be negative, got %d", mb)}
	}
	if mb == 0 {
		mb = def
	}
	debug.SetMemoryLimit(int64(mb) << 20)
	return nil
}
