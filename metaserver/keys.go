package metaserver

import (
	"encoding/binary"

	"github.com/cairn-fs/cairn/internal/block"
)

// The Badger key space. Every key starts with one byte naming its table;
// integers are big-endian so that keys sort numerically.
//
//	I ino            → inode record
//	D parent name    → dentry: child ino, child mode (for d_type)
//	E ino off        → extent covering [off, off+len) of ino
//	R block          → reference count and block length
//	G when block     → a block whose count reached zero at time when;
//	                   garbage once the grace period has passed
//	O ino            → an orphan: an inode with no names, kept because a
//	                   client had it open; the value is that client's
//	                   session, then a 1 if open's O_TMPFILE made it
//	                   (orphanValue). Purged at its last close there,
//	                   or when the session expires (see session.go)
//	N node-id        → a chunkserver's cluster map entry
//	S name           → system values (inode allocator, epoch)
//	X ino name       → an extended attribute's value (POSIX ACLs too)
const (
	tInode   = 'I'
	tDentry  = 'D'
	tExtent  = 'E'
	tRef     = 'R'
	tGarbage = 'G'
	tNode    = 'N'
	tOrphan  = 'O'
	tSystem  = 'S'
	tXattr   = 'X'
)

var (
	keyInoLimit = []byte("Sino-limit") // inode numbers below it may be in use
	keyEpoch    = []byte("Sepoch")
	keyCluster  = []byte("Scluster-id")
	keyACLCount = []byte("Sacl-count") // POSIX ACLs in the namespace (acl.go)
	// keyStoredCounted is set once every inode record carries
	// Attr.Stored (migrate.go).
	keyStoredCounted = []byte("Sstored-counted")
)

// u64Key is table t's key for v, with room for more bytes after it, so
// that building a key costs one allocation.
func u64Key(t byte, v uint64, more int) []byte {
	return binary.BigEndian.AppendUint64(append(make([]byte, 0, 9+more), t), v)
}

func inodeKey(ino uint64) []byte { return u64Key(tInode, ino, 0) }

func dentryPrefix(parent uint64) []byte { return u64Key(tDentry, parent, 0) }

func dentryKey(parent uint64, name string) []byte {
	return append(u64Key(tDentry, parent, len(name)), name...)
}

func extentPrefix(ino uint64) []byte { return u64Key(tExtent, ino, 0) }

func extentKey(ino, off uint64) []byte {
	return binary.BigEndian.AppendUint64(u64Key(tExtent, ino, 8), off)
}

func refKey(id block.ID) []byte { return append(append(make([]byte, 0, 1+len(id)), tRef), id[:]...) }

func garbageKey(when int64, id block.ID) []byte {
	return append(u64Key(tGarbage, uint64(when), len(id)), id[:]...)
}

func orphanKey(ino uint64) []byte { return u64Key(tOrphan, ino, 0) }

// orphanValue is an orphan record's value: the owning session, then, for
// a file made with no name by tmpfile, a 1, which lets it be linked.
func orphanValue(session uint64, tmpfile bool) []byte {
	v := binary.BigEndian.AppendUint64(nil, session)
	if tmpfile {
		v = append(v, 1)
	}
	return v
}

// parseOrphan reads an orphan record's value.
func parseOrphan(v []byte) (session uint64, tmpfile bool) {
	if len(v) < 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(v), len(v) == 9 && v[8] == 1
}

func nodeKey(id string) []byte { return append([]byte{tNode}, id...) }

func xattrPrefix(ino uint64) []byte { return u64Key(tXattr, ino, 0) }

func xattrKey(ino uint64, name string) []byte {
	return append(u64Key(tXattr, ino, len(name)), name...)
}
