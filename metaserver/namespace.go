package metaserver

import (
	"errors"
	"slices"
	"strings"
	"syscall"

	"github.com/cairn-fs/cairn/internal/wire"
	badger "github.com/dgraph-io/badger/v4"
)

// Each exported-to-RPC operation below is one transaction: it either
// happens whole or not at all.

func checkName(name string) error {
	switch {
	case name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00"):
		return wire.Errorf(wire.CodeInvalid, "bad name %q", name)
	case len(name) > wire.MaxName:
		return wire.Errorf(wire.CodeNameTooLong, "name of %d bytes", len(name))
	}
	return nil
}

func (s *store) lookup(parent uint64, name string) (attr wire.Attr, err error) {
	err = s.view(func(tx *txn) error {
		if _, err := tx.getDir(parent); err != nil {
			return err
		}
		if len(name) > wire.MaxName {
			return wire.ErrNameTooLong
		}
		d, err := tx.getDentry(parent, name)
		if err != nil {
			return err
		}
		n, err := tx.getInode(d.Ino)
		if err != nil {
			return err
		}
		attr = n.Attr
		return nil
	})
	return attr, err
}

func (s *store) getAttr(ino uint64) (attr wire.Attr, err error) {
	err = s.view(func(tx *txn) error {
		n, err := tx.getInode(ino)
		if err == nil {
			attr = n.Attr
		}
		return err
	})
	return attr, err
}

func (s *store) readlink(ino uint64) (target string, err error) {
	err = s.view(func(tx *txn) error {
		n, err := tx.getInode(ino)
		if err != nil {
			return err
		}
		if n.Mode&syscall.S_IFMT != syscall.S_IFLNK {
			return wire.Errorf(wire.CodeInvalid, "inode %d is not a symlink", ino)
		}
		target = n.Target
		return nil
	})
	return target, err
}

func (s *store) setAttr(req *wire.SetAttrReq) (attr wire.Attr, err error) {
	err = s.update(func(tx *txn) error {
		n, err := tx.getInode(req.Ino)
		if err != nil {
			return err
		}
		if req.Valid&wire.SetMode != 0 {
			n.Mode = n.Mode&syscall.S_IFMT | req.Mode&0o7777
			if err := tx.chmodACL(n); err != nil {
				return err
			}
		}
		if req.Valid&wire.SetUid != 0 {
			n.Uid = req.Uid
		}
		if req.Valid&wire.SetGid != 0 {
			n.Gid = req.Gid
		}
		if req.Valid&wire.SetSize != 0 {
			if n.isDir() {
				return wire.Errorf(wire.CodeIsDir, "truncate inode %d", n.Ino)
			}
			if !n.isReg() {
				return wire.Errorf(wire.CodeInvalid, "truncate inode %d: not a regular file", n.Ino)
			}
			if req.Size < n.Size {
				if err := tx.punch(n, req.Size, ^uint64(0)); err != nil {
					return err
				}
			}
			// Even to the same size, as ext4: truncate(2) and O_TRUNC
			// always set mtime.
			n.Size = req.Size
			n.Mtime = tx.now
		}
		switch {
		case req.Valid&wire.SetAtimeNow != 0:
			n.Atime = tx.now
		case req.Valid&wire.SetAtime != 0:
			n.Atime = req.Atime
		}
		switch {
		case req.Valid&wire.SetMtimeNow != 0:
			n.Mtime = tx.now
		case req.Valid&wire.SetMtime != 0:
			n.Mtime = req.Mtime
		}
		n.Ctime = tx.now
		attr = n.Attr
		return tx.putInode(n)
	})
	return attr, err
}

func (s *store) make(req *wire.MakeReq) (attr wire.Attr, dirs dirChange, err error) {
	if err := checkName(req.Name); err != nil {
		return attr, dirs, err
	}
	if req.Mode&syscall.S_IFMT == 0 {
		req.Mode |= syscall.S_IFREG
	}
	dirs, err = s.change(func(tx *txn) error {
		parent, err := tx.getDir(req.Parent)
		if err != nil {
			return err
		}
		if _, err := tx.getDentry(req.Parent, req.Name); err == nil {
			return wire.Errorf(wire.CodeExists, "%q in inode %d", req.Name, req.Parent)
		}
		ino, err := tx.allocIno()
		if err != nil {
			return err
		}
		n := &inode{Attr: wire.Attr{
			Ino: ino, Mode: req.Mode, Uid: req.Uid, Gid: req.Gid, Nlink: 1, Rdev: req.Rdev,
			Atime: tx.now, Mtime: tx.now, Ctime: tx.now,
		}}
		switch n.Mode & syscall.S_IFMT {
		case syscall.S_IFDIR:
			n.Nlink, n.Size, n.Parent = 2, 4096, req.Parent
			parent.Nlink++
		case syscall.S_IFLNK:
			if req.Target == "" || len(req.Target) >= 4096 {
				return wire.Errorf(wire.CodeInvalid, "symlink target of %d bytes", len(req.Target))
			}
			n.Target, n.Size = req.Target, uint64(len(req.Target))
		}
		if err := tx.inherit(parent, n, req.Umask); err != nil {
			return err
		}
		attr = n.Attr
		return tx.addEntry(parent, req.Name, n)
	})
	return attr, dirs, err
}

// inherit gives n, new in parent, what parent passes on: a setgid
// directory its group, and its setgid bit to subdirectories; a default
// ACL its access ACL and mode, else the umask applies.
func (tx *txn) inherit(parent, n *inode, umask uint32) error {
	if parent.Mode&syscall.S_ISGID != 0 {
		n.Gid = parent.Gid
		if n.isDir() {
			n.Mode |= syscall.S_ISGID
		}
	}
	return tx.inheritACL(parent, n, umask)
}

// tmpfile creates a regular file in no directory, as O_TMPFILE does: an
// orphan of the caller's session from the start, marked linkable.
func (s *store) tmpfile(req *wire.TmpfileReq) (attr wire.Attr, err error) {
	err = s.update(func(tx *txn) error {
		parent, err := tx.getDir(req.Parent)
		if err != nil {
			return err
		}
		ino, err := tx.allocIno()
		if err != nil {
			return err
		}
		n := &inode{Attr: wire.Attr{
			Ino: ino, Mode: syscall.S_IFREG | req.Mode&0o7777, Uid: req.Uid, Gid: req.Gid,
			Atime: tx.now, Mtime: tx.now, Ctime: tx.now,
		}}
		if err := tx.inherit(parent, n, req.Umask); err != nil {
			return err
		}
		attr = n.Attr
		if err := tx.Set(orphanKey(ino), orphanValue(req.Session, true)); err != nil {
			return err
		}
		return tx.putInode(n)
	})
	return attr, err
}

// addEntry names n in parent: the new entry, n's inode and the touched
// parent are written.
func (tx *txn) addEntry(parent *inode, name string, n *inode) error {
	tx.touchDir(parent)
	if err := tx.putInode(n); err != nil {
		return err
	}
	if err := tx.putInode(parent); err != nil {
		return err
	}
	return tx.putDentry(parent.Ino, name, n)
}

func (s *store) link(req *wire.LinkReq) (attr wire.Attr, dirs dirChange, err error) {
	if err := checkName(req.Name); err != nil {
		return attr, dirs, err
	}
	dirs, err = s.change(func(tx *txn) error {
		n, err := tx.getInode(req.Ino)
		if err != nil {
			return err
		}
		if n.isDir() {
			return wire.Errorf(wire.CodePerm, "hard link to directory %d", n.Ino)
		}
		if n.Nlink == 0 {
			// Only a file made by tmpfile may get a name back.
			linkable, err := tx.linkable(n.Ino)
			if err != nil {
				return err
			}
			if !linkable {
				return wire.Errorf(wire.CodeNotFound, "inode %d was unlinked", n.Ino)
			}
			if err := tx.Delete(orphanKey(n.Ino)); err != nil {
				return err
			}
		}
		if n.Nlink >= 65000 {
			return wire.Errorf(wire.CodeMlink, "inode %d has %d links", n.Ino, n.Nlink)
		}
		parent, err := tx.getDir(req.Parent)
		if err != nil {
			return err
		}
		if _, err := tx.getDentry(req.Parent, req.Name); err == nil {
			return wire.Errorf(wire.CodeExists, "%q in inode %d", req.Name, req.Parent)
		}
		n.Nlink++
		n.Ctime = tx.now
		attr = n.Attr
		return tx.addEntry(parent, req.Name, n)
	})
	return attr, dirs, err
}

func (s *store) remove(req *wire.RemoveReq) (gone wire.Attr, dirs dirChange, err error) {
	dirs, err = s.change(func(tx *txn) error {
		parent, err := tx.getDir(req.Parent)
		if err != nil {
			return err
		}
		if req.Name == "." {
			return wire.ErrInvalid
		}
		if req.Name == ".." {
			return wire.ErrNotEmpty
		}
		d, err := tx.getDentry(req.Parent, req.Name)
		if err != nil {
			return err
		}
		n, err := tx.getInode(d.Ino)
		if err != nil {
			return err
		}
		if req.Dir && !n.isDir() {
			return wire.Errorf(wire.CodeNotDir, "%q", req.Name)
		}
		if !req.Dir && n.isDir() {
			return wire.Errorf(wire.CodeIsDir, "%q", req.Name)
		}
		if err := tx.Delete(dentryKey(req.Parent, req.Name)); err != nil {
			return err
		}
		if err := tx.dropLink(n, parent, req.Open, req.Session); err != nil {
			return err
		}
		if !n.isDir() || slices.Contains(req.Open, n.Ino) { // an open directory is kept too
			gone = n.Attr
		}
		tx.touchDir(parent)
		return tx.putInode(parent)
	})
	return gone, dirs, err
}

// dropLink removes one name of n from parent (whose dentry the caller
// deletes): a directory must be empty and goes at once; a file loses a
// link and, with its last one, its inode and layout — unless it is in
// open, the inodes the caller has open, which keep it as an orphan owned
// by the caller's session.
func (tx *txn) dropLink(n, parent *inode, open []uint64, session uint64) error {
	if n.isDir() {
		if !tx.dirEmpty(n.Ino) {
			return wire.Errorf(wire.CodeNotEmpty, "directory %d", n.Ino)
		}
		parent.Nlink--
		// An open directory keeps its attributes for fstat, with no
		// links and, as on ext4, no size; nothing can be created in it
		// (getDir refuses it).
		n.Nlink, n.Size = 0, 0
		n.Ctime = tx.now
	} else {
		n.Nlink--
		n.Ctime = tx.now
		if n.Nlink > 0 {
			return tx.putInode(n)
		}
	}
	if slices.Contains(open, n.Ino) {
		if err := tx.Set(orphanKey(n.Ino), orphanValue(session, false)); err != nil {
			return err
		}
		return tx.putInode(n)
	}
	if n.isDir() {
		return tx.deleteInode(n.Ino)
	}
	return tx.deleteFile(n)
}

// deleteFile deletes a file's inode and layout. An empty file has no
// layout to look for: every extent lies below its file's size (a commit
// grows the size over what it writes; a truncate punches what it cuts).
func (tx *txn) deleteFile(n *inode) error {
	if n.Size > 0 {
		if err := tx.punch(n, 0, ^uint64(0)); err != nil {
			return err
		}
	}
	return tx.deleteInode(n.Ino)
}

// purge deletes an orphan once its last user closed it.
func (s *store) purge(ino uint64) error {
	return s.update(func(tx *txn) error {
		n, err := tx.getInode(ino)
		if errorsIsNotFound(err) {
			return nil // already purged
		}
		if err != nil {
			return err
		}
		if n.Nlink > 0 {
			return nil // linked again (or never an orphan): nothing to purge
		}
		if err := tx.Delete(orphanKey(ino)); err != nil {
			return err
		}
		if n.isDir() {
			return tx.deleteInode(ino)
		}
		return tx.deleteFile(n)
	})
}

// linkable reports whether ino, which has no name, may get one: only a
// file made by tmpfile may, as Linux allows linkat only for O_TMPFILE.
func (tx *txn) linkable(ino uint64) (bool, error) {
	item, err := tx.Get(orphanKey(ino))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var tmpfile bool
	err = item.Value(func(v []byte) error {
		_, tmpfile = parseOrphan(v)
		return nil
	})
	return tmpfile, err
}

// isAncestor reports whether dir a is dir b or one of b's ancestors.
func (tx *txn) isAncestor(a, b uint64) (bool, error) {
	for depth := 0; depth < 1<<16; depth++ {
		if a == b {
			return true, nil
		}
		if b == RootIno {
			return false, nil
		}
		n, err := tx.getInode(b)
		if err != nil {
			return false, err
		}
		b = n.Parent
	}
	return false, wire.Errorf(wire.CodeInternal, "directory parent chain too deep")
}

func (s *store) rename(req *wire.RenameReq) (replaced wire.Attr, dirs dirChange, err error) {
	if err := checkName(req.NewName); err != nil {
		return replaced, dirs, err
	}
	if req.Flags&^(wire.RenameNoReplace|wire.RenameExchange) != 0 ||
		req.Flags == wire.RenameNoReplace|wire.RenameExchange {
		return replaced, dirs, wire.Errorf(wire.CodeInvalid, "rename flags %#x", req.Flags)
	}
	dirs, err = s.change(func(tx *txn) error {
		oldDir, err := tx.getDir(req.OldParent)
		if err != nil {
			return err
		}
		newDir := oldDir
		if req.NewParent != req.OldParent {
			if newDir, err = tx.getDir(req.NewParent); err != nil {
				return err
			}
		}
		sd, err := tx.getDentry(req.OldParent, req.OldName)
		if err != nil {
			return err
		}
		src, err := tx.getInode(sd.Ino)
		if err != nil {
			return err
		}
		var dst *inode
		if dd, err := tx.getDentry(req.NewParent, req.NewName); err == nil {
			if dst, err = tx.getInode(dd.Ino); err != nil {
				return err
			}
		} else if !errorsIsNotFound(err) {
			return err
		}
		if req.Flags&wire.RenameExchange != 0 {
			if dst == nil {
				return wire.Errorf(wire.CodeNotFound, "exchange with missing %q", req.NewName)
			}
			return tx.exchange(req, oldDir, newDir, src, dst)
		}
		if dst != nil && req.Flags&wire.RenameNoReplace != 0 {
			return wire.Errorf(wire.CodeExists, "%q", req.NewName)
		}
		if dst != nil && dst.Ino == src.Ino {
			return nil // both names are links to one inode: nothing to do
		}
		if src.isDir() && req.NewParent != req.OldParent {
			inside, err := tx.isAncestor(src.Ino, req.NewParent)
			if err != nil {
				return err
			}
			if inside {
				return wire.Errorf(wire.CodeInvalid, "cannot move a directory into itself")
			}
		}
		if dst != nil {
			switch {
			case src.isDir() && !dst.isDir():
				return wire.Errorf(wire.CodeNotDir, "%q", req.NewName)
			case !src.isDir() && dst.isDir():
				return wire.Errorf(wire.CodeIsDir, "%q", req.NewName)
			}
			if err := tx.dropLink(dst, newDir, req.Open, req.Session); err != nil {
				return err
			}
			if !dst.isDir() || slices.Contains(req.Open, dst.Ino) {
				replaced = dst.Attr
			}
		}
		if err := tx.Delete(dentryKey(req.OldParent, req.OldName)); err != nil {
			return err
		}
		if err := tx.putDentry(req.NewParent, req.NewName, src); err != nil {
			return err
		}
		if src.isDir() && req.NewParent != req.OldParent {
			src.Parent = req.NewParent
			oldDir.Nlink--
			newDir.Nlink++
		}
		src.Ctime = tx.now
		tx.touchDir(oldDir)
		tx.touchDir(newDir)
		return tx.putAll(src, oldDir, newDir)
	})
	return replaced, dirs, err
}

// exchange swaps two names atomically (RENAME_EXCHANGE).
func (tx *txn) exchange(req *wire.RenameReq, oldDir, newDir, a, b *inode) error {
	if a.Ino == b.Ino {
		return nil
	}
	if req.OldParent != req.NewParent {
		for _, m := range []struct{ moved, into uint64 }{{a.Ino, req.NewParent}, {b.Ino, req.OldParent}} {
			inside, err := tx.isAncestor(m.moved, m.into)
			if err != nil {
				return err
			}
			if inside {
				return wire.Errorf(wire.CodeInvalid, "cannot move a directory into itself")
			}
		}
		if a.isDir() {
			a.Parent = req.NewParent
			oldDir.Nlink--
			newDir.Nlink++
		}
		if b.isDir() {
			b.Parent = req.OldParent
			newDir.Nlink--
			oldDir.Nlink++
		}
	}
	if err := tx.putDentry(req.NewParent, req.NewName, a); err != nil {
		return err
	}
	if err := tx.putDentry(req.OldParent, req.OldName, b); err != nil {
		return err
	}
	a.Ctime, b.Ctime = tx.now, tx.now
	tx.touchDir(oldDir)
	tx.touchDir(newDir)
	return tx.putAll(a, b, oldDir, newDir)
}

// putAll writes inodes back; when two arguments are the same inode (a
// rename within one directory) only the last copy is written, so callers
// pass the directories last.
func (tx *txn) putAll(ns ...*inode) error {
	for i, n := range ns {
		if slices.ContainsFunc(ns[i+1:], func(m *inode) bool { return m.Ino == n.Ino }) {
			continue
		}
		if err := tx.putInode(n); err != nil {
			return err
		}
	}
	return nil
}

func (s *store) readDir(req *wire.ReadDirReq) (resp wire.ReadDirResp, err error) {
	limit := int(req.Limit)
	if limit <= 0 || limit > 4096 {
		limit = 4096
	}
	err = s.view(func(tx *txn) error {
		if _, err := tx.getDir(req.Ino); err != nil {
			return err
		}
		prefix := dentryPrefix(req.Ino)
		it := tx.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 256})
		defer it.Close()
		start := dentryKey(req.Ino, req.After)
		for it.Seek(start); it.Valid(); it.Next() {
			name := string(it.Item().Key()[len(prefix):])
			if req.After != "" && name == req.After {
				continue
			}
			if len(resp.Entries) == limit {
				resp.More = true
				break
			}
			var d dentry
			if err := it.Item().Value(func(b []byte) error { return wire.Unmarshal(b, &d) }); err != nil {
				return err
			}
			n, err := tx.getInode(d.Ino)
			if err != nil {
				return err
			}
			resp.Entries = append(resp.Entries, wire.DirEntry{Name: name, Attr: n.Attr})
		}
		return nil
	})
	return resp, err
}
