package chunkserver

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/cairn-fs/cairn/internal/block"
	"github.com/cairn-fs/cairn/internal/wire"
)

// diskStore keeps each block in its own file, blocks/ab/abcdef…, named
// by its ID. A block file is written to tmp/, fsynced, renamed into
// place and its directory fsynced, so a block that exists is whole.
type diskStore struct {
	dir       string
	outboards *outboards // for slices of blocks (slice.go)
}

func openDiskStore(dir string) (*diskStore, error) {
	for _, d := range []string{"blocks", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	// Temporary files are from writes a crash interrupted; none was acknowledged.
	tmps, _ := filepath.Glob(filepath.Join(dir, "tmp", "*"))
	for _, t := range tmps {
		os.Remove(t)
	}
	return &diskStore{dir: dir, outboards: newOutboards()}, nil
}

func (s *diskStore) path(id block.ID) string {
	h := id.String()
	return filepath.Join(s.dir, "blocks", h[:2], h)
}

func (s *diskStore) has(id block.ID) bool {
	_, err := os.Stat(s.path(id))
	return err == nil
}

// put stores data as block id, which the caller has verified.
func (s *diskStore) put(id block.ID, data []byte) error {
	// data hashes to id (checked by the caller), so a stored copy equal to
	// it is good; an absent or rotten copy is (re)written whole.
	if existing, err := os.ReadFile(s.path(id)); err == nil && bytes.Equal(existing, data) {
		// A re-put counts as a fresh write: the garbage collector keeps a
		// block for a grace period after its last put (see remove).
		if os.Chtimes(s.path(id), time.Time{}, time.Now()) == nil {
			return nil
		}
	}
	final := s.path(id)
	if err := os.MkdirAll(filepath.Dir(final), 0o700); err != nil {
		return ioErr("create block directory", err)
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := filepath.Join(s.dir, "tmp", hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return ioErr("create block file", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, final)
	}
	if err != nil {
		os.Remove(tmp)
		return ioErr("write block "+id.Short(), err)
	}
	return syncDir(filepath.Dir(final))
}

// get reads block id and verifies it; a block that fails verification is
// reported as corrupt, never returned.
func (s *diskStore) get(id block.ID) ([]byte, error) {
	data, err := os.ReadFile(s.path(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, wire.Errorf(wire.CodeNotFound, "block %s", id.Short())
	}
	if err != nil {
		return nil, ioErr("read block "+id.Short(), err)
	}
	if !id.Verify(data) {
		return nil, wire.Errorf(wire.CodeCorrupt, "block %s in %s fails its hash", id.Short(), s.dir)
	}
	return data, nil
}

// usage returns the bytes used and the total size of the disk under dir.
func (s *diskStore) usage() (used, total uint64) {
	var st syscall.Statfs_t
	if syscall.Statfs(s.dir, &st) != nil {
		return 0, 0
	}
	total = st.Blocks * uint64(st.Bsize)
	return total - st.Bavail*uint64(st.Bsize), total
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return ioErr("sync directory", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return ioErr("sync directory", err)
	}
	return nil
}

// ioErr turns a disk error into a wire error, keeping ENOSPC recognizable.
func ioErr(what string, err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return wire.Errorf(wire.CodeNoSpace, "%s: %v", what, err)
	}
	return wire.Errorf(wire.CodeIO, "%s: %v", what, err)
}

// nodeID returns the chunkserver's stable ID, made on first start.
func nodeID(dir string) (string, error) {
	file := filepath.Join(dir, "node-id")
	b, err := os.ReadFile(file)
	if err == nil && len(b) > 1 {
		return string(b[:len(b)-1]), nil
	}
	if !errors.Is(err, os.ErrNotExist) && err != nil {
		return "", err
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	id := hex.EncodeToString(rnd[:])
	if err := os.WriteFile(file, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write node ID: %w", err)
	}
	return id, nil
}
