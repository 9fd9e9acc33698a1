package chunkserver

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cairn-fs/cairn/internal/block"
	"github.com/cairn-fs/cairn/internal/directio"
	"github.com/cairn-fs/cairn/internal/wire"
)

// blockFiles writes new block files with direct I/O (internal/directio):
// every put is fsynced before it is acknowledged, so a buffered write
// would copy the block into the page cache only for the fsync to write it
// out again at once. The buffered write was 27% of a `cairn up`'s CPU
// under a sequential write, and the kernel's writeback more on top.
var blockFiles = directio.NewWriter(block.MaxSize + wire.MaxStoredOverhead)

// diskStore keeps each block in its own file, blocks/ab/abcdef…, named
// by its ID. A block file is written to tmp/ under its ID and a random
// suffix, fsynced together with tmp/, and renamed into place, so a block
// that exists is whole; see put for why that is durable.
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
	s := &diskStore{dir: dir, outboards: newOutboards()}
	if err := s.recoverTmp(); err != nil {
		return nil, err
	}
	return s, nil
}

// recoverTmp finishes the puts that a power cut caught after their
// fsyncs but before their rename reached the disk (see put): a file in
// tmp/ that is named for its block and verifies goes into place, as its
// put may have been acknowledged. Anything else in tmp/ is from a put
// that was not, and goes. A recovered block nothing references is
// garbage, which the collector deletes again.
func (s *diskStore) recoverTmp() error {
	dir := filepath.Join(s.dir, "tmp")
	files, err := os.ReadDir(dir)
	if err != nil {
		return ioErr("recover block writes", err)
	}
	for _, f := range files {
		tmp := filepath.Join(dir, f.Name())
		name, _, _ := strings.Cut(f.Name(), ".")
		b, err := hex.DecodeString(name)
		if err != nil || len(b) != len(block.ID{}) {
			os.Remove(tmp)
			continue
		}
		id := block.ID(b)
		data, err := readBlockFile(tmp)
		if err != nil || !id.Verify(data) {
			os.Remove(tmp)
			continue
		}
		if _, err := s.get(id); err == nil {
			os.Remove(tmp) // a good copy is in place
			continue
		}
		final := s.path(id)
		if err := s.moveIntoPlace(tmp, final); err != nil {
			return ioErr("recover block "+id.Short(), err)
		}
		if err := syncDir(filepath.Dir(final)); err != nil {
			return err
		}
	}
	return nil
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
	if existing, err := readBlockFile(s.path(id)); err == nil && bytes.Equal(existing, data) {
		// A re-put counts as a fresh write: the garbage collector keeps a
		// block for a grace period after its last put (see remove).
		if os.Chtimes(s.path(id), time.Time{}, time.Now()) == nil {
			return nil
		}
	}
	// The block is durable, and whole wherever it can be found, once its
	// content and a name for it are on disk: the content is written to
	// tmp/ID.RANDOM, and that file and tmp/ are fsynced at once (so that
	// the file system can serve both with one journal commit), before the
	// put returns. The rename into place that follows needs no fsync of
	// its own: a rename is atomic across a crash, so after a power cut the
	// block is in place, or still in tmp/, whole, where recoverTmp finds it
	// before the store serves anything. A crash before the fsyncs leaves
	// only tmp/, whose unacknowledged files recoverTmp checks or removes.
	f, direct, err := directio.CreateTemp(filepath.Join(s.dir, "tmp"), id.String()+".")
	if err != nil {
		return ioErr("create block file", err)
	}
	tmp := f.Name()
	err = blockFiles.Write(f, direct, encodeBlockFile(data))
	if err == nil {
		dirSynced := make(chan error, 1)
		go func() { dirSynced <- syncDir(filepath.Join(s.dir, "tmp")) }()
		err = f.Sync()
		if derr := <-dirSynced; err == nil {
			err = derr
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.moveIntoPlace(tmp, s.path(id))
	}
	if err != nil {
		os.Remove(tmp)
		return ioErr("write block "+id.Short(), err)
	}
	return nil
}

// moveIntoPlace renames a block file from tmp/ to final, making final's
// directory on first use.
func (s *diskStore) moveIntoPlace(tmp, final string) error {
	err := os.Rename(tmp, final)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(final), 0o700); err != nil {
			return err
		}
		err = os.Rename(tmp, final)
	}
	return err
}

// get reads block id and verifies it; a block that fails verification is
// reported as corrupt, never returned.
func (s *diskStore) get(id block.ID) ([]byte, error) {
	data, err := s.readUnverified(id)
	if err != nil {
		return nil, err
	}
	if !id.Verify(data) {
		return nil, wire.Errorf(wire.CodeCorrupt, "block %s in %s fails its hash", id.Short(), s.dir)
	}
	return data, nil
}

// readUnverified reads block id whole; the caller verifies it.
func (s *diskStore) readUnverified(id block.ID) ([]byte, error) {
	data, err := readBlockFile(s.path(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, wire.Errorf(wire.CodeNotFound, "block %s", id.Short())
	}
	var undecodable *undecodableError
	if errors.As(err, &undecodable) {
		return nil, wire.Errorf(wire.CodeCorrupt, "block %s in %s: %v", id.Short(), s.dir, err)
	}
	if err != nil {
		return nil, ioErr("read block "+id.Short(), err)
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
