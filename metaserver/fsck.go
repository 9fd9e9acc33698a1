package metaserver

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cairn-fs/cairn/internal/block"
	"github.com/cairn-fs/cairn/internal/cluster"
	"github.com/cairn-fs/cairn/internal/wire"
	badger "github.com/dgraph-io/badger/v4"
)

// maxReported bounds the problems and notes an fsck lists one by one.
const maxReported = 200

// fsckReport collects findings.
type fsckReport struct{ wire.FsckResp }

func (r *fsckReport) problem(format string, args ...any) {
	r.ProblemCount++
	if len(r.Problems) < maxReported {
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	}
}

func (r *fsckReport) note(format string, args ...any) {
	r.NoteCount++
	if len(r.Notes) < maxReported {
		r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
	}
}

// fsck checks, in one snapshot of the namespace: that every directory
// entry names an inode of its type; that link counts agree with the
// entries (a directory's with its subdirectories); that every inode has a
// name or is an orphan kept open; that extents belong to regular files,
// lie inside their blocks and hold the bytes their files say they store;
// that every block's reference count equals the extents naming it; and,
// against the chunkservers' listings taken after the snapshot, that every
// referenced block has R copies of its length on live chunkservers — with
// verify, copies whose bytes hash to their ID; a bad one is quarantined
// and replaced. Progress goes to the log.
func (s *Server) fsck(ctx context.Context, verify bool) (*wire.FsckResp, error) {
	r := &fsckReport{}
	m := s.members.snapshot()
	start := time.Now()
	err := s.store.view(func(tx *txn) error {
		type info struct {
			mode, nlink    uint32
			size           uint64
			stored, extent uint64 // bytes: as the inode says, and as its extents hold
			names, dirs    uint32 // dentries naming it; subdirectories (dirs only)
		}
		inodes := map[uint64]*info{}
		it := tx.NewIterator(badger.IteratorOptions{Prefix: []byte{tInode}, PrefetchValues: true})
		for it.Rewind(); it.Valid(); it.Next() {
			var n inode
			if err := it.Item().Value(func(b []byte) error { return wire.Unmarshal(b, &n) }); err != nil {
				r.problem("inode record %x: %v", it.Item().Key(), err)
				continue
			}
			inodes[n.Ino] = &info{mode: n.Mode, nlink: n.Nlink, size: n.Size, stored: n.Stored}
			r.Inodes++
			if n.isDir() {
				r.Dirs++
			} else if n.isReg() {
				r.Files++
			}
			if r.Inodes%100000 == 0 {
				s.cfg.Log.Info("fsck: inodes", "checked", r.Inodes)
			}
		}
		it.Close()
		if err := ctx.Err(); err != nil {
			return err
		}
		it = tx.NewIterator(badger.IteratorOptions{Prefix: []byte{tDentry}, PrefetchValues: true})
		for it.Rewind(); it.Valid(); it.Next() {
			key := it.Item().Key()
			parent, name := binary.BigEndian.Uint64(key[1:9]), string(key[9:])
			var d dentry
			if err := it.Item().Value(func(b []byte) error { return wire.Unmarshal(b, &d) }); err != nil {
				r.problem("entry %q in %d: %v", name, parent, err)
				continue
			}
			p, child := inodes[parent], inodes[d.Ino]
			switch {
			case p == nil:
				r.problem("entry %q is in inode %d, which does not exist", name, parent)
			case p.mode&0o170000 != 0o040000:
				r.problem("entry %q is in inode %d, which is not a directory", name, parent)
			}
			if child == nil {
				r.problem("entry %q in %d names inode %d, which does not exist", name, parent, d.Ino)
				continue
			}
			if child.mode&0o170000 != d.Mode&0o170000 {
				r.problem("entry %q in %d says type %o, inode %d is %o", name, parent, d.Mode&0o170000, d.Ino, child.mode&0o170000)
			}
			child.names++
			if child.mode&0o170000 == 0o040000 && p != nil {
				p.dirs++
			}
		}
		it.Close()
		orphans := map[uint64]bool{}
		it = tx.NewIterator(badger.IteratorOptions{Prefix: []byte{tOrphan}})
		for it.Rewind(); it.Valid(); it.Next() {
			orphans[binary.BigEndian.Uint64(it.Item().Key()[1:])] = true
		}
		it.Close()
		for ino, n := range inodes {
			isDir := n.mode&0o170000 == 0o040000
			switch {
			case isDir && n.names == 0 && n.nlink == 0 && orphans[ino]:
				r.note("directory %d is removed but still open on a mount", ino)
			case isDir && ino != RootIno && n.names != 1:
				r.problem("directory %d has %d names, want 1", ino, n.names)
			case isDir && n.nlink != 2+n.dirs:
				r.problem("directory %d has nlink %d, but 2 + %d subdirectories", ino, n.nlink, n.dirs)
			case !isDir && n.nlink != n.names:
				r.problem("inode %d has nlink %d but %d names", ino, n.nlink, n.names)
			case !isDir && n.names == 0 && !orphans[ino]:
				r.problem("inode %d has no name and is not kept open (lost inode)", ino)
			case !isDir && n.names == 0:
				r.note("inode %d is unlinked but still open on a mount", ino)
			}
		}
		for ino := range orphans {
			if n := inodes[ino]; n == nil || n.names > 0 {
				r.problem("orphan record for inode %d, which is missing or has names", ino)
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		// Extents and the reference counts they imply.
		refs := map[block.ID]uint64{}
		lens := map[block.ID]uint32{}
		prefixLen := len(extentPrefix(0)) // E and the inode number, before the offset
		it = tx.NewIterator(badger.IteratorOptions{Prefix: []byte{tExtent}, PrefetchValues: true})
		for it.Rewind(); it.Valid(); it.Next() {
			key := it.Item().Key()
			ino, off := binary.BigEndian.Uint64(key[1:9]), binary.BigEndian.Uint64(key[9:17])
			e, err := extentOf(it.Item(), prefixLen)
			if err != nil {
				r.problem("extent of inode %d at %d: %v", ino, off, err)
				continue
			}
			r.Extents++
			n := inodes[ino]
			switch {
			case n == nil:
				r.problem("extent at %d of inode %d, which does not exist", off, ino)
			case n.mode&0o170000 != 0o100000:
				r.problem("extent at %d of inode %d, which is not a regular file", off, ino)
			case e.End() > n.size:
				r.problem("extent [%d,%d) of inode %d lies past its size %d", off, e.End(), ino, n.size)
			}
			if n != nil {
				n.extent += uint64(e.Len)
			}
			if !e.Valid() {
				r.problem("extent at %d of inode %d lies outside its block %s", off, ino, e.Block.Short())
			}
			refs[e.Block]++
			lens[e.Block] = e.BlockLen
		}
		it.Close()
		for ino, n := range inodes {
			if n.stored != n.extent {
				r.problem("inode %d says it stores %d bytes, its extents hold %d", ino, n.stored, n.extent)
			}
		}
		it = tx.NewIterator(badger.IteratorOptions{Prefix: []byte{tRef}, PrefetchValues: true})
		for it.Rewind(); it.Valid(); it.Next() {
			id := block.ID(it.Item().Key()[1:])
			var rc ref
			if err := it.Item().Value(func(b []byte) error { return wire.Unmarshal(b, &rc) }); err != nil {
				r.problem("reference count of block %s: %v", id.Short(), err)
				continue
			}
			if refs[id] != rc.Count {
				r.problem("block %s has reference count %d but %d extents name it", id.Short(), rc.Count, refs[id])
			}
			if _, ok := refs[id]; !ok {
				refs[id] = 0 // counted, and checked for copies below
				lens[id] = rc.Len
			}
		}
		it.Close()
		for id, n := range refs {
			if n > 0 {
				if _, err := tx.Get(refKey(id)); err != nil {
					r.problem("block %s is named by %d extents but has no reference count", id.Short(), n)
				}
			}
		}
		r.Blocks = uint64(len(refs))
		s.cfg.Log.Info("fsck: namespace checked", "inodes", r.Inodes, "extents", r.Extents, "blocks", r.Blocks, "took", time.Since(start).Round(time.Millisecond))

		// Copies, from listings taken after the snapshot.
		type copyInfo struct{ good, bad int }
		have := map[block.ID]*copyInfo{}
		stored := map[block.ID]bool{}
		for _, n := range m.Nodes {
			if n.State == cluster.Down {
				continue
			}
			var check []block.ID
			_, err := s.list(ctx, n, func(b wire.StoredBlock) {
				stored[b.ID] = true
				want, ok := lens[b.ID]
				if !ok {
					return
				}
				c := have[b.ID]
				if c == nil {
					c = &copyInfo{}
					have[b.ID] = c
				}
				r.Copies++
				// A copy stored compressed is smaller than the block; one
				// larger than the block and a header cannot be whole.
				if b.Size <= want+wire.MaxStoredOverhead {
					c.good++
					check = append(check, b.ID)
				} else {
					c.bad++
					r.problem("block %s on chunkserver %s has %d bytes, more than its %d", b.ID.Short(), n.Addr, b.Size, want)
				}
			})
			if err != nil {
				r.problem("chunkserver %s could not be listed: %v", n.Addr, err)
				continue
			}
			if !verify {
				continue
			}
			bad, err := s.verifyOn(ctx, n, check)
			if err != nil {
				r.problem("chunkserver %s could not verify its blocks: %v", n.Addr, err)
			}
			for _, id := range bad {
				have[id].good--
				r.problem("block %s on chunkserver %s fails its hash (quarantined; a good copy will replace it)", id.Short(), n.Addr)
			}
			if len(bad) > 0 {
				s.sched.mu.Lock()
				s.sched.mu.corrupt += uint64(len(bad))
				s.sched.mu.Unlock()
				s.kickReconcile()
			}
			s.cfg.Log.Info("fsck: verified", "chunkserver", n.Addr, "blocks", len(check), "bad", len(bad))
		}
		want := min(s.cfg.Replicas, len(m.Nodes))
		for id := range refs {
			c := have[id]
			switch {
			case c == nil || c.good == 0:
				r.problem("block %s has no copy on any live chunkserver (lost)", id.Short())
			case c.good < want:
				r.problem("block %s has %d of %d copies (under-replicated; repair is scheduled)", id.Short(), c.good, want)
			}
		}
		unreferenced := 0
		for id := range stored {
			if _, ok := refs[id]; !ok {
				unreferenced++
			}
		}
		if unreferenced > 0 {
			r.note("%d stored blocks are referenced by no file: garbage or uploads not yet committed, deleted after the grace period", unreferenced)
		}
		return nil
	})
	return &r.FsckResp, err
}

// verifyOn has chunkserver n hash the blocks ids, returning the bad ones.
func (s *Server) verifyOn(ctx context.Context, n cluster.Node, ids []block.ID) (bad []block.ID, err error) {
	for len(ids) > 0 {
		batch := ids[:min(len(ids), 64)]
		ids = ids[len(batch):]
		cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		var resp wire.VerifyResp
		err := s.chunks.Call(cctx, n.Addr, wire.CVerify, &wire.VerifyReq{IDs: batch}, &resp)
		cancel()
		if err != nil {
			return bad, err
		}
		bad = append(bad, resp.Bad...)
	}
	return bad, nil
}
