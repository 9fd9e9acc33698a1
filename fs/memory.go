package fs

// Held counts what a mount keeps in memory per name, inode or open
// directory. Each is bounded whatever the number of files touched; the
// tests in memory_test.go check the bounds on real mounts.
type Held struct {
	ListedEntries int // directory entries kept by open directories (at most 3 pages of 1024 each)
	DirAttrs      int // directories' attributes kept from this mount's changes (maxDirAttrs)
	PageLayouts   int // files whose cached pages' layout is remembered (maxRemembered)
	Xattrs        int // cached extended attribute answers (maxXattrEntries, maxXattrBytes)
}

// Held reports what the mount keeps in memory now.
func (m *Mount) Held() Held {
	f := m.fs
	h := Held{DirAttrs: f.dirs.held(), PageLayouts: f.pages.held(), Xattrs: f.xattrs.held()}
	f.mu.Lock()
	dirs := make([]*dirHandle, 0, len(f.mu.dirs))
	for _, d := range f.mu.dirs {
		dirs = append(dirs, d)
	}
	f.mu.Unlock()
	for _, d := range dirs {
		d.mu.Lock()
		h.ListedEntries += d.listing.kept()
		d.mu.Unlock()
	}
	return h
}

func (c *dirAttrs) held() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.mu.dirs)
}

func (p *pageCache) held() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.mu.layouts)
}

func (xc *xattrCache) held() int {
	xc.mu.Lock()
	defer xc.mu.Unlock()
	return len(xc.entries)
}
