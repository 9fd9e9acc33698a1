package metaserver

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"

	"github.com/cairn-fs/cairn/internal/wire"
	badger "github.com/dgraph-io/badger/v4"
)

// POSIX ACLs are extended attributes that the kernel enforces (FUSE
// mounts with FUSE_POSIX_ACL); the file system's part is what Linux's
// fs/posix_acl.c does for a local file system: keep the mode and the
// access ACL in step (setting the ACL sets the mode, chmod rewrites the
// ACL), drop an access ACL that says no more than the mode, and give a
// new inode its parent's default ACL.
const (
	aclAccess  = wire.ACLAccess
	aclDefault = wire.ACLDefault
)

// The xattr form of an ACL (linux/posix_acl_xattr.h): a little-endian
// version word, then entries of tag, permissions and id.
const (
	aclVersion  = 2
	aclUserObj  = 0x01
	aclUser     = 0x02
	aclGroupObj = 0x04
	aclGroup    = 0x08
	aclMask     = 0x10
	aclOther    = 0x20
)

type aclEntry struct {
	tag, perm uint16
	id        uint32
}

func parseACL(b []byte) ([]aclEntry, error) {
	if len(b) < 4 || (len(b)-4)%8 != 0 || binary.LittleEndian.Uint32(b) != aclVersion {
		return nil, wire.Errorf(wire.CodeInvalid, "malformed POSIX ACL of %d bytes", len(b))
	}
	var es []aclEntry
	for p := b[4:]; len(p) > 0; p = p[8:] {
		e := aclEntry{tag: binary.LittleEndian.Uint16(p), perm: binary.LittleEndian.Uint16(p[2:]), id: binary.LittleEndian.Uint32(p[4:])}
		switch e.tag {
		case aclUserObj, aclUser, aclGroupObj, aclGroup, aclMask, aclOther:
		default:
			return nil, wire.Errorf(wire.CodeInvalid, "POSIX ACL entry with tag %#x", e.tag)
		}
		if e.perm&^7 != 0 {
			return nil, wire.Errorf(wire.CodeInvalid, "POSIX ACL entry with permissions %#o", e.perm)
		}
		es = append(es, e)
	}
	return es, nil
}

func appendACL(es []aclEntry) []byte {
	b := binary.LittleEndian.AppendUint32(nil, aclVersion)
	for _, e := range es {
		b = binary.LittleEndian.AppendUint16(b, e.tag)
		b = binary.LittleEndian.AppendUint16(b, e.perm)
		b = binary.LittleEndian.AppendUint32(b, e.id)
	}
	return b
}

// aclPermBits is the rwxrwxrwx an access ACL gives (the group bits are
// the mask's when there is one), and whether the ACL has entries beyond
// the three the mode can say (posix_acl_equiv_mode).
func aclPermBits(es []aclEntry) (bits uint32, extended bool) {
	mask := -1
	for _, e := range es {
		p := uint32(e.perm & 7)
		switch e.tag {
		case aclUserObj:
			bits |= p << 6
		case aclGroupObj:
			bits |= p << 3
		case aclOther:
			bits |= p
		case aclMask:
			mask, extended = int(p), true
		default:
			extended = true
		}
	}
	if mask >= 0 {
		bits = bits&^0o070 | uint32(mask)<<3
	}
	return bits, extended
}

// aclChmod rewrites an access ACL for new permission bits (posix_acl_chmod).
func aclChmod(es []aclEntry, mode uint32) {
	group := -1
	for i := range es {
		switch es[i].tag {
		case aclUserObj:
			es[i].perm = uint16(mode >> 6 & 7)
		case aclOther:
			es[i].perm = uint16(mode & 7)
		case aclGroupObj:
			if group < 0 || es[group].tag != aclMask {
				group = i
			}
		case aclMask:
			group = i
		}
	}
	if group >= 0 {
		es[group].perm = uint16(mode >> 3 & 7)
	}
}

// aclCreateMasq limits an inherited ACL by the mode create asked for and
// the mode by the ACL (posix_acl_create_masq); it returns the new
// permission bits and whether the ACL says more than them.
func aclCreateMasq(es []aclEntry, mode uint32) (uint32, bool) {
	extended := false
	group, mask := -1, -1
	for i := range es {
		e := &es[i]
		switch e.tag {
		case aclUserObj:
			e.perm &= uint16(mode>>6&7) | ^uint16(7)
			mode &= uint32(e.perm)<<6 | ^uint32(0o700)
		case aclUser, aclGroup:
			extended = true
		case aclGroupObj:
			group = i
		case aclOther:
			e.perm &= uint16(mode&7) | ^uint16(7)
			mode &= uint32(e.perm) | ^uint32(0o007)
		case aclMask:
			mask, extended = i, true
		}
	}
	if mask < 0 {
		mask = group
	}
	if mask >= 0 {
		es[mask].perm &= uint16(mode>>3&7) | ^uint16(7)
		mode &= uint32(es[mask].perm)<<3 | ^uint32(0o070)
	}
	return mode, extended
}

// setACL checks an ACL being set on n and applies what it implies: an
// access ACL sets n's permission bits, and is not kept (keep false) when
// the mode says it all. A default ACL is kept as given.
func (tx *txn) setACL(n *inode, name string, value []byte) (keep bool, err error) {
	es, err := parseACL(value)
	if err != nil {
		return false, err
	}
	if name == aclDefault {
		if !n.isDir() {
			return false, wire.Errorf(wire.CodeInvalid, "default ACL on inode %d, which is not a directory", n.Ino)
		}
		return true, nil
	}
	bits, extended := aclPermBits(es)
	n.Mode = n.Mode&^0o777 | bits
	return extended, nil
}

// chmodACL keeps n's access ACL, if any, in step with a new mode.
func (tx *txn) chmodACL(n *inode) error {
	if tx.noACLs() {
		return nil
	}
	v, ok, err := tx.getXattrValue(n.Ino, aclAccess)
	if err != nil || !ok {
		return err
	}
	es, err := parseACL(v)
	if err != nil {
		return err
	}
	aclChmod(es, n.Mode)
	return tx.putXattr(n.Ino, aclAccess, appendACL(es))
}

// inheritACL gives a new inode n in parent its ACLs and mode: with a
// default ACL on parent, n's access ACL is that ACL limited by the mode
// asked for (and a directory inherits the default ACL itself);
// otherwise the umask applies (posix_acl_create).
func (tx *txn) inheritACL(parent, n *inode, umask uint32) error {
	if n.Mode&syscall.S_IFMT == syscall.S_IFLNK {
		return nil
	}
	var def []byte
	ok := false
	if !tx.noACLs() {
		var err error
		if def, ok, err = tx.getXattrValue(parent.Ino, aclDefault); err != nil {
			return err
		}
	}
	if !ok {
		n.Mode &^= umask & 0o777
		return nil
	}
	es, err := parseACL(def)
	if err != nil {
		return err
	}
	if n.isDir() {
		if err := tx.putXattr(n.Ino, aclDefault, def); err != nil {
			return err
		}
		if err := tx.addACLs(1); err != nil {
			return err
		}
	}
	bits, extended := aclCreateMasq(es, n.Mode&0o777)
	n.Mode = n.Mode&^0o777 | bits
	if !extended {
		return nil
	}
	if err := tx.addACLs(1); err != nil {
		return err
	}
	return tx.putXattr(n.Ino, aclAccess, appendACL(es))
}

func isACL(name string) bool { return name == aclAccess || name == aclDefault }

// The namespace counts its ACLs so that a mount can skip asking for
// each inode's while there are none, which is the common case (see
// fs/xattr.go).

func (tx *txn) addACLs(delta int64) error {
	n, err := tx.aclCount()
	if err != nil {
		return err
	}
	tx.aclDelta += delta
	return tx.Set(keyACLCount, binary.BigEndian.AppendUint64(nil, uint64(int64(n)+delta)))
}

// noACLs reports that the namespace has no ACL at all, so that a
// change need not look for one: the count the store keeps in memory of
// its committed ACLs is zero and this transaction added none. It is
// false in views, which do not hold the store's lock.
func (tx *txn) noACLs() bool {
	if tx.s == nil {
		return false
	}
	return tx.s.mu.acls == 0 && tx.aclDelta == 0
}

func (tx *txn) aclCount() (uint64, error) {
	item, err := tx.Get(keyACLCount)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var n uint64
	err = item.Value(func(b []byte) error {
		if len(b) != 8 {
			return fmt.Errorf("corrupt ACL count of %d bytes", len(b))
		}
		n = binary.BigEndian.Uint64(b)
		return nil
	})
	return n, err
}

func (s *store) aclCount() (n uint64, err error) {
	err = s.view(func(tx *txn) error {
		n, err = tx.aclCount()
		return err
	})
	return n, err
}
