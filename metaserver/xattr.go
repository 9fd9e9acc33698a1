package metaserver

import (
	"bytes"
	"errors"
	"syscall"

	"github.com/cairn-fs/cairn/internal/wire"
	badger "github.com/dgraph-io/badger/v4"
)

// Extended attributes live under X ino name. Which namespaces a caller
// may touch (user.* only on regular files and directories, trusted.* only
// for root, ...) is the kernel's check; the store keeps any name, with
// Linux's limits on sizes.

// getXattrValue returns the value of name on ino, or nil, false.
func (tx *txn) getXattrValue(ino uint64, name string) ([]byte, bool, error) {
	item, err := tx.Get(xattrKey(ino, name))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	v, err := item.ValueCopy(nil)
	return v, err == nil, err
}

// xattrNames lists ino's attribute names in byte order.
func (tx *txn) xattrNames(ino uint64) ([]string, error) {
	prefix := xattrPrefix(ino)
	it := tx.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	var names []string
	for it.Rewind(); it.Valid(); it.Next() {
		names = append(names, string(it.Item().Key()[len(prefix):]))
	}
	return names, nil
}

// xattrsInUse reports whether the namespace may hold extended attributes:
// false only while none was found at open nor set since.
func (s *store) xattrsInUse() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.xattrs
}

// putXattr sets an attribute. Every attribute is set here, so that the
// store knows whether the namespace may have any (deleteXattrs).
func (tx *txn) putXattr(ino uint64, name string, value []byte) error {
	if tx.s != nil {
		tx.s.mu.xattrs = true
	}
	return tx.Set(xattrKey(ino, name), value)
}

// deleteXattrs removes every attribute of ino; deleteInode calls it.
// While no attribute was ever set in the namespace (the common case)
// there is nothing to look for.
func (tx *txn) deleteXattrs(ino uint64) error {
	if tx.s != nil && !tx.s.mu.xattrs {
		return nil
	}
	names, err := tx.xattrNames(ino)
	if err != nil {
		return err
	}
	for _, name := range names {
		if err := tx.Delete(xattrKey(ino, name)); err != nil {
			return err
		}
		if isACL(name) {
			if err := tx.addACLs(-1); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *store) getXattr(req *wire.XattrReq) (value []byte, err error) {
	if err := wire.CheckXattrName(req.Name); err != nil {
		return nil, err
	}
	err = s.view(func(tx *txn) error {
		if _, err := tx.getInode(req.Ino); err != nil {
			return err
		}
		v, ok, err := tx.getXattrValue(req.Ino, req.Name)
		if err != nil {
			return err
		}
		if !ok {
			return wire.Errorf(wire.CodeNoData, "no extended attribute %q on inode %d", req.Name, req.Ino)
		}
		value = v
		return nil
	})
	return value, err
}

func (s *store) listXattr(ino uint64) (names []string, err error) {
	err = s.view(func(tx *txn) error {
		if _, err := tx.getInode(ino); err != nil {
			return err
		}
		names, err = tx.xattrNames(ino)
		return err
	})
	return names, err
}

func (s *store) setXattr(req *wire.SetXattrReq) (attr wire.Attr, err error) {
	if err := wire.CheckXattrName(req.Name); err != nil {
		return attr, err
	}
	if len(req.Value) > wire.MaxXattrValue {
		return attr, wire.Errorf(wire.CodeTooBig, "extended attribute %q: value of %d bytes (at most %d)", req.Name, len(req.Value), wire.MaxXattrValue)
	}
	err = s.update(func(tx *txn) error {
		n, err := tx.getInode(req.Ino)
		if err != nil {
			return err
		}
		names, err := tx.xattrNames(req.Ino)
		if err != nil {
			return err
		}
		listed := 0
		exists := false
		for _, name := range names {
			listed += len(name) + 1
			exists = exists || name == req.Name
		}
		// Both flags at once are allowed, as on ext4: each one checks.
		switch {
		case exists && req.Flags&wire.XattrCreate != 0:
			return wire.Errorf(wire.CodeExists, "extended attribute %q on inode %d", req.Name, req.Ino)
		case !exists && req.Flags&wire.XattrReplace != 0:
			return wire.Errorf(wire.CodeNoData, "no extended attribute %q on inode %d", req.Name, req.Ino)
		case !exists && listed+len(req.Name)+1 > wire.MaxXattrList:
			// Every name must stay listable with one listxattr.
			return wire.Errorf(wire.CodeNoSpace, "inode %d: extended attribute names would exceed %d bytes", req.Ino, wire.MaxXattrList)
		}
		keep := true
		if isACL(req.Name) {
			if keep, err = tx.setACL(n, req.Name, req.Value); err != nil {
				return err
			}
		}
		if req.Flags&wire.XattrKillSgid != 0 {
			n.Mode &^= syscall.S_ISGID
		}
		if isACL(req.Name) && keep != exists {
			delta := int64(1)
			if !keep {
				delta = -1
			}
			if err := tx.addACLs(delta); err != nil {
				return err
			}
		}
		if keep {
			if err := tx.putXattr(req.Ino, req.Name, bytes.Clone(req.Value)); err != nil {
				return err
			}
		} else if exists {
			// An access ACL that says no more than the mode is not kept.
			if err := tx.Delete(xattrKey(req.Ino, req.Name)); err != nil {
				return err
			}
		}
		n.Ctime = tx.now
		attr = n.Attr
		return tx.putInode(n)
	})
	return attr, err
}

func (s *store) removeXattr(req *wire.XattrReq) (attr wire.Attr, err error) {
	if err := wire.CheckXattrName(req.Name); err != nil {
		return attr, err
	}
	err = s.update(func(tx *txn) error {
		n, err := tx.getInode(req.Ino)
		if err != nil {
			return err
		}
		if _, ok, err := tx.getXattrValue(req.Ino, req.Name); err != nil {
			return err
		} else if !ok {
			return wire.Errorf(wire.CodeNoData, "no extended attribute %q on inode %d", req.Name, req.Ino)
		}
		if err := tx.Delete(xattrKey(req.Ino, req.Name)); err != nil {
			return err
		}
		if isACL(req.Name) {
			if err := tx.addACLs(-1); err != nil {
				return err
			}
		}
		n.Ctime = tx.now
		attr = n.Attr
		return tx.putInode(n)
	})
	return attr, err
}
