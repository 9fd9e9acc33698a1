package chunkserver

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/cairn-fs/cairn/internal/block"
	"github.com/cairn-fs/cairn/internal/wire"
)

func openTestStore(t *testing.T, dir string) *diskStore {
	t.Helper()
	s, err := openDiskStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPutGetHas(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	data := bytes.Repeat([]byte("cairn block "), 1000)
	id := block.Sum(data)
	if s.has(id) {
		t.Fatal("empty store has a block")
	}
	_, err := s.get(id)
	if !errors.Is(err, wire.ErrNotFound) {
		t.Fatalf("get missing: %v, want NotFound", err)
	}
	if err := s.put(id, data); err != nil {
		t.Fatal(err)
	}
	if !s.has(id) {
		t.Fatal("has after put = false")
	}
	got, err := s.get(id)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get: err %v, equal %v", err, bytes.Equal(got, data))
	}
	// Idempotent.
	if err := s.put(id, data); err != nil {
		t.Fatal(err)
	}
	// The empty block is a block too.
	empty := block.Sum(nil)
	if err := s.put(empty, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := s.get(empty); err != nil || len(got) != 0 {
		t.Fatalf("empty block: %q %v", got, err)
	}
	// Layout on disk: blocks/ab/abcd…, and nothing left in tmp/.
	if _, err := os.Stat(filepath.Join(s.dir, "blocks", id.String()[:2], id.String())); err != nil {
		t.Fatalf("block file not where expected: %v", err)
	}
	if left, _ := os.ReadDir(filepath.Join(s.dir, "tmp")); len(left) != 0 {
		t.Fatalf("tmp/ holds %d files after puts", len(left))
	}
	// A second store on the same directory sees the block.
	if got, err := openTestStore(t, s.dir).get(id); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("reopened: %v", err)
	}
}

func corrupt(t *testing.T, s *diskStore, id block.ID, at int) {
	t.Helper()
	p := s.path(id)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[at%len(b)] ^= 0x01
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptBlockOnDisk(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	data := bytes.Repeat([]byte{1, 2, 3, 4, 5}, 2000)
	id := block.Sum(data)
	if err := s.put(id, data); err != nil {
		t.Fatal(err)
	}
	corrupt(t, s, id, 4321)
	got, err := s.get(id)
	if !errors.Is(err, wire.ErrCorrupt) {
		t.Fatalf("get of a flipped byte: %v, want CodeCorrupt", err)
	}
	if got != nil {
		t.Fatal("get returned the corrupt bytes")
	}
	// A truncated block file is corrupt too.
	data2 := []byte("short block")
	id2 := block.Sum(data2)
	s.put(id2, data2)
	os.Truncate(s.path(id2), 3)
	if _, err := s.get(id2); !errors.Is(err, wire.ErrCorrupt) {
		t.Fatalf("get of a truncated block: %v, want CodeCorrupt", err)
	}
	// And through the CGet handler.
	srv := testServer(t, s)
	_, err = srv.mux()[wire.CGet](context.Background(), wire.Marshal(&wire.BlockReq{ID: id}))
	if !errors.Is(err, wire.ErrCorrupt) {
		t.Fatalf("CGet of a corrupt block: %v, want CodeCorrupt", err)
	}
}

// TestPutOverCorruptBlockRepairs: once a block file has rotted, a put of
// the good content (a re-replication, or a new file with the same
// content) must leave a readable block; put must not be acknowledged
// while the block on disk is not what its ID names.
func TestPutOverCorruptBlockRepairs(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	data := bytes.Repeat([]byte("rot"), 3000)
	id := block.Sum(data)
	if err := s.put(id, data); err != nil {
		t.Fatal(err)
	}
	corrupt(t, s, id, 17)
	if err := s.put(id, data); err != nil {
		t.Fatalf("put of the good content: %v", err)
	}
	if got, err := s.get(id); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("put acknowledged but the block still fails to read: %v", err)
	}
}

func TestTmpCleanedAtOpen(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir)
	data := []byte("keep me")
	id := block.Sum(data)
	s.put(id, data)
	for _, name := range []string{"0123456789abcdef", "half-written", ".hidden"} {
		if err := os.WriteFile(filepath.Join(dir, "tmp", name), []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s = openTestStore(t, dir)
	if left, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(left) != 0 {
		var names []string
		for _, e := range left {
			names = append(names, e.Name())
		}
		t.Fatalf("tmp/ still holds %v after open", names)
	}
	if got, err := s.get(id); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("open lost a real block: %v", err)
	}
}

func TestNodeIDStable(t *testing.T) {
	dir := t.TempDir()
	a, err := nodeID(dir)
	if err != nil || len(a) != 16 {
		t.Fatalf("node ID %q %v", a, err)
	}
	b, err := nodeID(dir)
	if err != nil || a != b {
		t.Fatalf("node ID changed: %q then %q (%v)", a, b, err)
	}
	c, _ := nodeID(t.TempDir())
	if c == a {
		t.Fatal("two directories got one node ID")
	}
}

func testServer(t *testing.T, st *diskStore) *Server {
	return &Server{store: st, cfg: Config{Dir: st.dir, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}}
}

func TestHandlers(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	mux := testServer(t, st).mux()
	ctx := context.Background()
	data := []byte("block content")
	id := block.Sum(data)

	// A put whose data does not match its ID is refused and stores nothing.
	_, err := mux[wire.CPut](ctx, wire.Marshal(&wire.PutReq{ID: id, Data: []byte("other content")}))
	if !errors.Is(err, wire.ErrCorrupt) {
		t.Fatalf("mismatched put: %v, want CodeCorrupt", err)
	}
	if st.has(id) || st.has(block.Sum([]byte("other content"))) {
		t.Fatal("mismatched put stored something")
	}
	// Too big.
	big := make([]byte, block.MaxSize+1)
	_, err = mux[wire.CPut](ctx, wire.Marshal(&wire.PutReq{ID: block.Sum(big), Data: big}))
	if !errors.Is(err, &wire.Error{Code: wire.CodeTooBig}) {
		t.Fatalf("oversized put: %v, want CodeTooBig", err)
	}
	// Malformed body.
	_, err = mux[wire.CPut](ctx, []byte{1, 2, 3})
	if !errors.Is(err, wire.ErrMalformed) {
		t.Fatalf("malformed put: %v", err)
	}

	resp, err := mux[wire.CHas](ctx, wire.Marshal(&wire.BlockReq{ID: id}))
	if err != nil || resp.(*wire.HasResp).Has {
		t.Fatalf("has before put: %+v %v", resp, err)
	}
	_, err = mux[wire.CGet](ctx, wire.Marshal(&wire.BlockReq{ID: id}))
	if !errors.Is(err, wire.ErrNotFound) {
		t.Fatalf("get before put: %v", err)
	}
	if _, err := mux[wire.CPut](ctx, wire.Marshal(&wire.PutReq{ID: id, Data: data})); err != nil {
		t.Fatal(err)
	}
	resp, err = mux[wire.CHas](ctx, wire.Marshal(&wire.BlockReq{ID: id}))
	if err != nil || !resp.(*wire.HasResp).Has {
		t.Fatalf("has after put: %+v %v", resp, err)
	}
	resp, err = mux[wire.CGet](ctx, wire.Marshal(&wire.BlockReq{ID: id}))
	if err != nil || !bytes.Equal(resp.(*wire.GetResp).Data, data) {
		t.Fatalf("get after put: %+v %v", resp, err)
	}
	// A full-size block round-trips.
	full := bytes.Repeat([]byte{0xab}, block.MaxSize)
	fid := block.Sum(full)
	if _, err := mux[wire.CPut](ctx, wire.Marshal(&wire.PutReq{ID: fid, Data: full})); err != nil {
		t.Fatal(err)
	}
	resp, err = mux[wire.CGet](ctx, wire.Marshal(&wire.BlockReq{ID: fid}))
	if err != nil || !bytes.Equal(resp.(*wire.GetResp).Data, full) {
		t.Fatalf("full-size block: %v", err)
	}
}

func TestUsage(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	used, total := s.usage()
	if total == 0 || used > total {
		t.Fatalf("usage %d of %d", used, total)
	}
}
