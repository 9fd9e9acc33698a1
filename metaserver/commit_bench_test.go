package metaserver

import (
	"testing"

	"github.com/cairn-fs/cairn/internal/block"
	"github.com/cairn-fs/cairn/internal/wire"
)

// BenchmarkCommitRewrites measures a commit of one 4 KiB write into a
// file of 1,000 such extents (a database's pages, say) after the file
// has taken 20,000 such commits: Badger keeps every version of a
// rewritten extent key in its memtable until that is flushed, and a
// commit walks the versions of every key it reads.
func BenchmarkCommitRewrites(b *testing.B) {
	s := newStore(b)
	a, _, err := s.make(&wire.MakeReq{Parent: RootIno, Name: "db", Mode: modeFile})
	if err != nil {
		b.Fatal(err)
	}
	const pages, page = 1000, 4096
	id := block.Sum([]byte("page"))
	rng := newRand(1)
	write := func(p int) {
		e := wire.Extent{Off: uint64(p) * page, Len: page, Block: id, BlockLen: page}
		if _, err := s.commit(&wire.CommitReq{Ino: a.Ino, Extents: []wire.Extent{e}, Mtime: 1}); err != nil {
			b.Fatal(err)
		}
	}
	for p := range pages {
		write(p)
	}
	for range 20 * pages {
		write(rng.IntN(pages))
	}
	b.ResetTimer()
	for range b.N {
		write(rng.IntN(pages))
	}
}
