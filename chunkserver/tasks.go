package chunkserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/cairn-fs/cairn/internal/block"
	"github.com/cairn-fs/cairn/internal/rpc"
	"github.com/cairn-fs/cairn/internal/wire"
)

// The metaserver's scheduler drives the background work on a chunkserver
// through these calls: list what is stored (so it can compare with what
// the namespace references and with placement), fetch a block from
// another chunkserver (repair, rebalance, replacing a bad copy), delete
// blocks (garbage, extra copies), and scrub.

// maxList bounds one page of a listing.
const maxList = 1 << 14

func (s *Server) taskMux(m rpc.Mux) {
	rpc.On(m, wire.CList, func(_ context.Context, r *wire.ListReq) (wire.Message, error) {
		limit := int(min(max(r.Limit, 1), maxList))
		resp := &wire.ListResp{}
		now := time.Now()
		err := s.store.walk(r.After, func(id block.ID, fi os.FileInfo) bool {
			if len(resp.Blocks) == limit {
				resp.More = true
				return false
			}
			resp.Blocks = append(resp.Blocks, wire.StoredBlock{ID: id, Size: uint32(fi.Size()), Age: int64(now.Sub(fi.ModTime()))})
			return true
		})
		return resp, err
	})
	rpc.On(m, wire.CDelete, func(_ context.Context, r *wire.DeleteReq) (wire.Message, error) {
		resp := &wire.DeleteResp{}
		for _, id := range r.IDs {
			freed, err := s.store.remove(id, time.Duration(r.MinAge))
			if err != nil {
				return resp, err
			}
			if freed >= 0 {
				resp.Deleted++
				resp.Freed += uint64(freed)
			}
		}
		s.stats.deleted.Add(uint64(resp.Deleted))
		s.stats.freed.Add(resp.Freed)
		return resp, nil
	})
	rpc.On(m, wire.CFetch, func(ctx context.Context, r *wire.FetchReq) (wire.Message, error) {
		moved, err := s.fetch(ctx, r.ID, r.From)
		s.stats.fetched.Add(moved)
		return &wire.FetchResp{Moved: moved}, err
	})
	rpc.On(m, wire.CTouch, func(_ context.Context, r *wire.TouchReq) (wire.Message, error) {
		resp := &wire.TouchResp{}
		now := time.Now()
		for _, id := range r.IDs {
			if err := os.Chtimes(s.store.path(id), time.Time{}, now); err != nil {
				resp.Missing = append(resp.Missing, id)
			}
		}
		return resp, nil
	})
	rpc.On(m, wire.CVerify, func(_ context.Context, r *wire.VerifyReq) (wire.Message, error) {
		resp := &wire.VerifyResp{}
		for _, id := range r.IDs {
			_, err := s.store.get(id)
			switch {
			case errors.Is(err, wire.ErrCorrupt):
				s.cfg.Log.Error("verify: block fails its hash; quarantined", "block", id.String(), "dir", s.cfg.Dir)
				if err := s.store.quarantine(id); err != nil {
					return nil, err
				}
				s.stats.corrupt.Add(1)
				resp.Bad = append(resp.Bad, id)
			case errors.Is(err, wire.ErrNotFound):
				resp.Missing = append(resp.Missing, id)
			case err != nil:
				return nil, err
			}
		}
		return resp, nil
	})
	rpc.On(m, wire.CScrub, func(ctx context.Context, r *wire.ScrubReq) (wire.Message, error) {
		return s.scrub(ctx, r.After, r.MaxBytes)
	})
}

// fetch makes sure the store holds a good copy of id, copying it from the
// first source that has one.
func (s *Server) fetch(ctx context.Context, id block.ID, from []string) (uint64, error) {
	if _, err := s.store.get(id); err == nil {
		return 0, nil
	}
	var errs []error
	for _, addr := range from {
		if addr == s.cfg.Advertise {
			continue
		}
		var resp wire.GetResp
		err := s.client.Call(ctx, addr, wire.CGet, &wire.BlockReq{ID: id}, &resp)
		if err == nil && !id.Verify(resp.Data) {
			err = wire.Errorf(wire.CodeCorrupt, "copy fails its hash")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", addr, err))
			continue
		}
		if err := s.store.put(id, resp.Data); err != nil {
			return 0, err
		}
		return uint64(len(resp.Data)), nil
	}
	return 0, wire.Errorf(wire.CodeUnavailable, "fetch block %s: no source has a good copy: %v", id.Short(), errors.Join(errs...))
}

// walk calls fn for every stored block after `after`, in ID order, until
// fn returns false.
func (s *diskStore) walk(after block.ID, fn func(id block.ID, fi os.FileInfo) bool) error {
	root := filepath.Join(s.dir, "blocks")
	dirs, err := os.ReadDir(root)
	if err != nil {
		return ioErr("list blocks", err)
	}
	first := hex.EncodeToString(after[:1])
	zero := after == block.ID{}
	for _, d := range dirs { // ReadDir sorts by name
		if !d.IsDir() || len(d.Name()) != 2 || d.Name() < first {
			continue
		}
		files, err := os.ReadDir(filepath.Join(root, d.Name()))
		if err != nil {
			return ioErr("list blocks", err)
		}
		names := make([]string, 0, len(files))
		for _, f := range files {
			names = append(names, f.Name())
		}
		sort.Strings(names)
		for _, name := range names {
			var id block.ID
			if b, err := hex.DecodeString(name); err != nil || len(b) != len(id) {
				continue // not a block file
			} else {
				copy(id[:], b)
			}
			if !zero && string(id[:]) <= string(after[:]) {
				continue
			}
			fi, err := os.Stat(filepath.Join(root, d.Name(), name))
			if err != nil {
				continue // deleted meanwhile
			}
			if !fn(id, fi) {
				return nil
			}
		}
	}
	return nil
}

// remove deletes block id unless it was written or re-put less than
// minAge ago, returning the bytes freed, or -1 if nothing was deleted.
//
// The file is first renamed aside, then its age is checked: a put that
// refreshed it before the rename is seen as young and the file is linked
// back; a put after the rename finds no file and writes a new one. Either
// way a put that returned success leaves the block in place.
func (s *diskStore) remove(id block.ID, minAge time.Duration) (int64, error) {
	final := s.path(id)
	var rnd [8]byte
	rand.Read(rnd[:])
	if err := os.MkdirAll(filepath.Join(s.dir, "deleting"), 0o700); err != nil {
		return -1, ioErr("delete block "+id.Short(), err)
	}
	aside := filepath.Join(s.dir, "deleting", id.String()+"."+hex.EncodeToString(rnd[:]))
	if err := os.Rename(final, aside); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return -1, nil
		}
		return -1, ioErr("delete block "+id.Short(), err)
	}
	fi, err := os.Stat(aside)
	if err == nil && time.Since(fi.ModTime()) < minAge {
		if err := os.Link(aside, final); err != nil && !errors.Is(err, os.ErrExist) {
			return -1, ioErr("keep young block "+id.Short(), err)
		}
		os.Remove(aside)
		return -1, nil
	}
	if err := os.Remove(aside); err != nil {
		return -1, ioErr("delete block "+id.Short(), err)
	}
	if fi == nil {
		return 0, nil
	}
	return fi.Size(), syncDir(filepath.Dir(final))
}

// recoverDeletes puts back the blocks a crash caught in the middle of
// remove: one of them may have been re-put and kept. The collector
// deletes again whatever is still garbage.
func (s *diskStore) recoverDeletes() error {
	dir := filepath.Join(s.dir, "deleting")
	files, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return ioErr("recover deletes", err)
	}
	for _, f := range files {
		name, _, _ := strings.Cut(f.Name(), ".")
		b, err := hex.DecodeString(name)
		if err != nil || len(b) != len(block.ID{}) {
			continue
		}
		final := s.path(block.ID(b))
		if err := os.MkdirAll(filepath.Dir(final), 0o700); err != nil {
			return ioErr("recover deletes", err)
		}
		if err := os.Link(filepath.Join(dir, f.Name()), final); err != nil && !errors.Is(err, os.ErrExist) {
			return ioErr("recover deletes", err)
		}
		os.Remove(filepath.Join(dir, f.Name()))
	}
	return nil
}

// quarantine moves a block that failed its hash out of the store, into
// quarantine/, where an operator can look at it; it is no longer served.
func (s *diskStore) quarantine(id block.ID) error {
	qdir := filepath.Join(s.dir, "quarantine")
	if err := os.MkdirAll(qdir, 0o700); err != nil {
		return ioErr("quarantine", err)
	}
	err := os.Rename(s.path(id), filepath.Join(qdir, id.String()+"."+time.Now().UTC().Format("20060102T150405")))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return ioErr("quarantine block "+id.Short(), err)
	}
	return nil
}
