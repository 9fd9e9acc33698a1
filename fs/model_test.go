package fs_test

// A model-based random tester: one random sequence of file system
// operations runs on the cairn mount and on a directory of the local
// disk, and every result is compared (return values, errnos, stat fields,
// data, listings, link targets), and now and then the whole trees. The
// local file system is the model: POSIX as Linux implements it.
//
// On the first divergence the test shrinks the sequence (greedy delta
// debugging, replaying candidates in fresh directories of the same
// cluster) and prints a minimal reproduction.
//
//	go test ./fs/ -run Model -v                        # CI size
//	CAIRN_MODEL_OPS=20000 go test ./fs/ -run Model -v  # hunt for bugs
//	CAIRN_MODEL_SEED=1234 go test ./fs/ -run Model -v  # replay a seed
//
// CAIRN_MODEL_SHRINK_SECONDS bounds the shrinking (default 120).
//
// Known cairn bugs that the generator steers around until they are fixed
// are the knownBug… switches in model_ops_test.go.
//
// A quarter of the operations run as unprivileged users, so that the
// kernel's permission checks and cairn's privilege dropping are compared
// too (modelUsers in model_meta_ops_test.go).
//
// The operations are in model_ops_test.go, those on extended attributes
// and times in model_meta_ops_test.go. Not covered (a later issue):
// mmap, fallocate, locks, SEEK_DATA/SEEK_HOLE, timestamps beyond
// utimensat and a sanity check, several mounts.

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-fs/cairn/internal/testcluster"
	"golang.org/x/sys/unix"
)

func modelEnvInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a non-negative number", name, v)
	}
	return n
}

func modelSeed(t *testing.T) uint64 {
	if v := os.Getenv("CAIRN_MODEL_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 0, 64)
		if err != nil {
			t.Fatalf("CAIRN_MODEL_SEED=%q: %v", v, err)
		}
		return s
	}
	return uint64(time.Now().UnixNano())
}

// TestModel runs a random sequence (CAIRN_MODEL_OPS operations, 2500 by
// default) with whole-tree comparisons every 400 operations and at the
// end, with descriptors still open and after closing them all.
func TestModel(t *testing.T) {
	n := modelEnvInt(t, "CAIRN_MODEL_OPS", 2500)
	seed := modelSeed(t)
	m := newModel(t, seed)
	g := newModelGen(seed)
	m.runAndReport(func(i int, local *modelSide) (modelOp, bool) {
		switch {
		case i < n && i > 0 && i%400 == 0:
			return modelOp{kind: opCheckTree}, true
		case i < n:
			return g.next(local), true
		}
		return modelTail(i-n, opCheckTree, opCloseAll, opCheckTree)
	})
	m.fsck()
}

// TestModelRestart is the same with the cluster restarted in the middle
// of the sequence and at its end (each after closing every descriptor);
// the trees must compare equal before and after each restart.
func TestModelRestart(t *testing.T) {
	n := modelEnvInt(t, "CAIRN_MODEL_OPS", 2500) / 3
	seed := modelSeed(t)
	m := newModel(t, seed)
	g := newModelGen(seed + 1) // not the same sequence as TestModel's for a seed
	m.runAndReport(func(i int, local *modelSide) (modelOp, bool) {
		switch {
		case i == n/2:
			return modelOp{kind: opRestart}, true
		case i < n:
			return g.next(local), true
		}
		return modelTail(i-n, opCheckTree, opRestart, opCheckTree)
	})
	m.fsck()
}

// fsck checks the namespace the sequence left: link counts, layouts,
// the bytes each file says it stores, reference counts, and that every
// block has its copies.
func (m *model) fsck() {
	if r := m.c.Fsck(m.t, false); r.ProblemCount != 0 {
		m.t.Fatalf("fsck after the sequence: %d problems: %v", r.ProblemCount, r.Problems)
	}
}

func modelTail(i int, kinds ...opKind) (modelOp, bool) {
	if i < len(kinds) {
		return modelOp{kind: kinds[i]}, true
	}
	return modelOp{}, false
}

// model runs sequences on one cluster. Every run (the generated one and
// each shrinking attempt) gets a fresh pair of directories.
type model struct {
	t           *testing.T
	c           *testcluster.Cluster
	seed        uint64
	cairnBase   string
	localBase   string
	runs        int
	cur         []*modelSide // the sides of the run going on, closed at cleanup
	start       time.Time
	shrinkLimit time.Duration
	stats       *opStats // of the generated run only
}

// opStats counts, per kind, how operations ended on the local side, to
// show that a run exercised what it claims to.
type opStats struct {
	ok, failed [nOpKinds]int
	written    int64
}

func (st *opStats) count(o modelOp, r opResult) {
	if st == nil {
		return
	}
	if r.errno == 0 {
		st.ok[o.kind]++
		if o.kind == opWrite || o.kind == opPwrite {
			st.written += r.ret
		}
	} else {
		st.failed[o.kind]++
	}
}

func (st *opStats) String() string {
	var b strings.Builder
	for k := range nOpKinds {
		if st.ok[k]+st.failed[k] > 0 {
			fmt.Fprintf(&b, " %v:%d/%d", k, st.ok[k], st.ok[k]+st.failed[k])
		}
	}
	return fmt.Sprintf("succeeded/total:%s; %d MiB written", b.String(), st.written>>20)
}

func newModel(t *testing.T, seed uint64) *model {
	old := syscall.Umask(0o022) // both sides get the same umask, and a known one
	t.Cleanup(func() { syscall.Umask(old) })
	// With a disk cache, as `cairn up` runs: after a restart, reads of
	// big blocks come from it.
	c := testcluster.Start(t, testcluster.Options{CacheDir: t.TempDir()})
	m := &model{
		t: t, c: c, seed: seed, cairnBase: c.Path("model"), localBase: t.TempDir(),
		start:       time.Now(),
		shrinkLimit: time.Duration(modelEnvInt(t, "CAIRN_MODEL_SHRINK_SECONDS", 120)) * time.Second,
	}
	// Registered after the cluster's Stop, so it runs first: no open
	// descriptor keeps the mount busy.
	t.Cleanup(func() {
		for _, s := range m.cur {
			s.closeAll()
		}
	})
	if err := os.Mkdir(m.cairnBase, 0o755); err != nil {
		t.Fatal(err)
	}
	// Some operations run as unprivileged users (modelUsers), who must
	// reach both bases.
	openForAll(t, c.Dir)
	openForAll(t, m.cairnBase)
	openForAll(t, m.localBase)
	t.Logf("seed %d (replay with CAIRN_MODEL_SEED=%d)", seed, seed)
	return m
}

// divergence is the first operation whose results differ.
type divergence struct {
	idx    int
	op     modelOp
	detail string
}

func (d *divergence) String() string {
	return fmt.Sprintf("op %d: %v\n    %s", d.idx, d.op, strings.ReplaceAll(d.detail, "\n", "\n    "))
}

// run executes the operations next produces, on a fresh pair of
// directories, until next says stop or the sides diverge. It closes every
// descriptor before it returns.
func (m *model) run(next func(i int, local *modelSide) (modelOp, bool)) (ops []modelOp, d *divergence) {
	m.runs++
	dir := fmt.Sprintf("r%d", m.runs)
	// Each side's work directory is <base>/rN/w, and the tree compared is
	// <base>/rN: a symlink target may climb one ".." out of w (see
	// symlinkTarget), and what it finds or creates there is compared too.
	cs := newModelSide("cairn", filepath.Join(m.cairnBase, dir, "w"))
	ls := newModelSide("local", filepath.Join(m.localBase, dir, "w"))
	for _, s := range []*modelSide{cs, ls} {
		if err := os.MkdirAll(s.root, 0o755); err != nil {
			m.t.Fatal(err)
		}
	}
	m.cur = []*modelSide{cs, ls}
	defer func() {
		cs.closeAll()
		ls.closeAll()
		m.cur = nil
	}()
	for i := 0; ; i++ {
		o, ok := next(i, ls)
		if !ok {
			return ops, nil
		}
		ops = append(ops, o)
		watchdog := time.AfterFunc(time.Minute, func() {
			fmt.Fprintf(os.Stderr, "model: op %d (%v) still running after a minute\n", i, o)
		})
		ls.last = opResult{}
		detail := m.execPair(o, cs, ls)
		watchdog.Stop()
		m.stats.count(o, ls.last)
		if detail != "" {
			return ops, &divergence{idx: i, op: o, detail: detail}
		}
	}
}

func modelReplay(ops []modelOp) func(int, *modelSide) (modelOp, bool) {
	return func(i int, _ *modelSide) (modelOp, bool) {
		if i < len(ops) {
			return ops[i], true
		}
		return modelOp{}, false
	}
}

// execPair runs o on both sides and describes how they differ ("" if
// they do not).
func (m *model) execPair(o modelOp, cs, ls *modelSide) string {
	switch o.kind {
	case opCloseAll:
		if a, b := cs.closeAll(), ls.closeAll(); a != b {
			return fmt.Sprintf("close results differ:\ncairn: %s\nlocal: %s", a, b)
		}
		return ""
	case opCheckTree:
		return m.compareTrees(cs, ls)
	case opRestart:
		if a, b := cs.closeAll(), ls.closeAll(); a != b {
			return fmt.Sprintf("close results differ:\ncairn: %s\nlocal: %s", a, b)
		}
		if d := m.compareTrees(cs, ls); d != "" {
			return "before the restart: " + d
		}
		m.c.Restart(m.t)
		if d := m.compareTrees(cs, ls); d != "" {
			return "after the restart: " + d
		}
		return ""
	}
	rc, rl := cs.exec(o), ls.exec(o)
	ls.last = rl
	if rc.equal(rl) {
		return ""
	}
	s := fmt.Sprintf("cairn: %v\nlocal: %v", rc, rl)
	if rc.hasData && rl.hasData && !bytes.Equal(rc.data, rl.data) {
		s += "\ndata: " + modelDataDiff(rc.data, rl.data)
	}
	return s
}

// modelNode is one entry of a tree snapshot.
type modelNode struct {
	stat   string // statString
	linkTo string // the first path (in walk order) naming the same inode
	target string // symlink target
	data   []byte // regular file content
	xattrs string // extended attributes, names in order (model_meta_ops_test.go)
	size   int64
	blocks int64 // st_blocks: 512-byte units stored
	mtime  time.Time
	ctime  time.Time
}

// modelSnapshot reads the whole tree under root without following symlinks.
func modelSnapshot(root string) (map[string]*modelNode, []string, error) {
	nodes := map[string]*modelNode{}
	var order []string
	firstName := map[uint64]string{}
	var walk func(rel string) error
	walk = func(rel string) error {
		p := filepath.Join(root, rel)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return fmt.Errorf("lstat %s: %w", rel, err)
		}
		n := &modelNode{
			stat: modelStatString(&st), size: st.Size, blocks: st.Blocks,
			mtime: time.Unix(st.Mtim.Unix()), ctime: time.Unix(st.Ctim.Unix()),
		}
		n.xattrs = modelXattrs(p)
		nodes[rel] = n
		order = append(order, rel)
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			if first, ok := firstName[st.Ino]; ok {
				n.linkTo = first
			} else {
				firstName[st.Ino] = rel
			}
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			data, e := modelReadAll(p, unix.O_RDONLY|unix.O_NOFOLLOW)
			if e != 0 {
				return fmt.Errorf("read %s: %w", rel, e)
			}
			n.data = data
		case unix.S_IFLNK:
			t, err := os.Readlink(p)
			if err != nil {
				return fmt.Errorf("readlink %s: %w", rel, err)
			}
			n.target = t
		case unix.S_IFDIR:
			list, e := modelListDir(p)
			if e != 0 {
				return fmt.Errorf("list %s: %w", rel, e)
			}
			n.target = list // the listing's d_types are compared too
			des, err := os.ReadDir(p)
			if err != nil {
				return err
			}
			for _, de := range des {
				if err := walk(filepath.Join(rel, de.Name())); err != nil {
					return err
				}
			}
		}
		return nil
	}
	err := walk(".")
	return nodes, order, err
}

// compareTrees compares the two sides' whole trees and checks cairn's
// timestamps for sanity: not before the test began, not in the future.
func (m *model) compareTrees(cs, ls *modelSide) string {
	cn, corder, err := modelSnapshot(filepath.Dir(cs.root))
	if err != nil {
		return "cairn tree: " + err.Error()
	}
	ln, lorder, err := modelSnapshot(filepath.Dir(ls.root))
	if err != nil {
		return "local tree: " + err.Error()
	}
	var diffs []string
	add := func(format string, args ...any) {
		if len(diffs) < 20 {
			diffs = append(diffs, fmt.Sprintf(format, args...))
		}
	}
	names := slices.Concat(corder, lorder)
	sort.Strings(names)
	names = slices.Compact(names)
	now := time.Now()
	for _, name := range names {
		c, l := cn[name], ln[name]
		switch {
		case c == nil:
			add("%s: only local (%s)", name, l.stat)
			continue
		case l == nil:
			add("%s: only cairn (%s)", name, c.stat)
			continue
		}
		if c.stat != l.stat {
			add("%s: stat: cairn %s, local %s", name, c.stat, l.stat)
		}
		if c.linkTo != l.linkTo {
			add("%s: hard link to: cairn %q, local %q", name, c.linkTo, l.linkTo)
		}
		if c.target != l.target {
			add("%s: target/listing: cairn %q, local %q", name, c.target, l.target)
		}
		if c.xattrs != l.xattrs {
			add("%s: xattrs: cairn %q, local %q", name, c.xattrs, l.xattrs)
		}
		if !bytes.Equal(c.data, l.data) {
			add("%s: content: %s", name, modelDataDiff(c.data, l.data))
		}
		// cairn's st_blocks counts the bytes a file stores, and the local
		// file system's its allocation, so they differ; but every byte
		// that is not zero is stored, and nothing past the size.
		if strings.HasPrefix(c.stat, "reg") {
			nonzero := int64(len(c.data) - bytes.Count(c.data, []byte{0}))
			if c.blocks < (nonzero+511)/512 || c.blocks > (c.size+511)/512 {
				add("%s: cairn st_blocks %d for %d bytes, %d of them not zero", name, c.blocks, c.size, nonzero)
			}
		}
		if strings.HasPrefix(l.stat, "fifo") {
			// The kernel runs a FIFO's I/O itself: a write moves the
			// times of its inode, and FUSE has no request to pass them
			// on (go-fuse's loopback keeps them too). Not compared.
			continue
		}
		outside := func(t time.Time) bool {
			return t.Before(m.start.Add(-2*time.Second)) || t.After(now.Add(2*time.Second))
		}
		if outside(l.mtime) { // set by utimensat: then the same on both sides
			if !c.mtime.Equal(l.mtime) {
				add("%s: mtime: cairn %v, local %v", name, c.mtime, l.mtime)
			}
			c.mtime = m.start
		}
		for _, ts := range []struct {
			what string
			t    time.Time
		}{{"mtime", c.mtime}, {"ctime", c.ctime}} {
			if outside(ts.t) {
				add("%s: cairn %s %v is outside the test's run [%v, %v]", name, ts.what, ts.t, m.start, now)
			}
		}
	}
	if len(diffs) == 0 {
		return ""
	}
	return "trees differ:\n" + strings.Join(diffs, "\n")
}

// runAndReport runs the generated sequence; on a divergence it shrinks
// it and fails the test with a minimal reproduction.
func (m *model) runAndReport(next func(int, *modelSide) (modelOp, bool)) {
	t := m.t
	began := time.Now()
	m.stats = &opStats{}
	ops, d := m.run(next)
	stats := m.stats
	m.stats = nil
	t.Logf("operations %s", stats)
	if d == nil {
		t.Logf("%d operations agreed in %v", len(ops), time.Since(began).Round(time.Millisecond))
		return
	}
	t.Errorf("seed %d: cairn and the local file system diverged at %v", m.seed, d)
	t.Logf("the %d operations up to the divergence:\n%s", d.idx+1, formatOps(ops[:d.idx+1], 60))
	min, md, attempts := m.shrink(ops, d)
	if md == nil {
		t.Fatalf("the divergence did not reproduce when replayed on a fresh directory (timing?); replay with CAIRN_MODEL_SEED=%d", m.seed)
	}
	t.Fatalf("minimal reproduction (%d of %d operations, %d shrinking runs; seed %d):\n%s\n  diverged at %v",
		len(min), d.idx+1, attempts, m.seed, formatOps(min, 0), md)
}

// formatOps lists ops one a line; with limit > 0 only the last limit.
func formatOps(ops []modelOp, limit int) string {
	var b strings.Builder
	first := 0
	if limit > 0 && len(ops) > limit {
		first = len(ops) - limit
		fmt.Fprintf(&b, "  ... (%d earlier operations)\n", first)
	}
	for i := first; i < len(ops); i++ {
		fmt.Fprintf(&b, "  %4d: %v\n", i, ops[i])
	}
	return strings.TrimRight(b.String(), "\n")
}

// shrink looks for a short sequence that still diverges at an operation
// of the same kind, each candidate run in fresh directories. It
// alternates two passes until neither helps: greedy delta debugging
// (removing chunks of halving size while that keeps the divergence), and
// flattening (dropping a leading directory from every path, so that a
// chain of operations that only built a deep path can go). It is bounded
// by CAIRN_MODEL_SHRINK_SECONDS.
func (m *model) shrink(ops []modelOp, orig *divergence) ([]modelOp, *divergence, int) {
	deadline := time.Now().Add(m.shrinkLimit)
	attempts := 0
	try := func(cand []modelOp) *divergence {
		attempts++
		_, d := m.run(modelReplay(cand))
		if d != nil && d.op.kind == orig.op.kind {
			return d
		}
		return nil
	}
	cur := ops[:orig.idx+1]
	best := try(cur)
	if best == nil {
		return cur, nil, attempts
	}
	cur = cur[:best.idx+1]
	inTime := func() bool { return time.Now().Before(deadline) }
	remove := func() bool {
		shrunk := false
		for chunk := max(len(cur)/2, 1); inTime(); {
			changed := false
			for i := 0; i < len(cur) && inTime(); {
				cand := slices.Concat(cur[:i], cur[min(i+chunk, len(cur)):])
				if d := try(cand); d != nil {
					cur, best, changed, shrunk = cand[:d.idx+1], d, true, true
					continue
				}
				i += chunk
			}
			if chunk == 1 && !changed {
				break
			}
			chunk = max(chunk/2, 1)
		}
		return shrunk
	}
	flatten := func() bool {
		for _, dir := range leadingDirs(cur) {
			if !inTime() {
				return false
			}
			cand := slices.Clone(cur)
			for i := range cand {
				cand[i].path = dropLeading(cand[i].path, dir)
				if cand[i].kind != opSymlink { // path2 of a symlink is its target
					cand[i].path2 = dropLeading(cand[i].path2, dir)
				}
			}
			if d := try(cand); d != nil {
				cur, best = cand[:d.idx+1], d
				return true
			}
		}
		return false
	}
	for remove() || flatten() {
	}
	if !inTime() {
		m.t.Logf("shrinking stopped at its time limit (CAIRN_MODEL_SHRINK_SECONDS); the sequence may not be minimal")
	}
	return cur, best, attempts
}

// leadingDirs lists the first components of the paths in ops that have
// more than one.
func leadingDirs(ops []modelOp) []string {
	var dirs []string
	for _, o := range ops {
		paths := []string{o.path}
		if o.kind != opSymlink {
			paths = append(paths, o.path2)
		}
		for _, p := range paths {
			if i := strings.Index(p, "/"); i > 0 {
				dirs = append(dirs, p[:i])
			}
		}
	}
	slices.Sort(dirs)
	return slices.Compact(dirs)
}

// dropLeading removes the leading directory dir from p.
func dropLeading(p, dir string) string {
	if rest, ok := strings.CutPrefix(p, dir+"/"); ok && rest != "" {
		return rest
	}
	return p
}
