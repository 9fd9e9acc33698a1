package wire

import (
	"bytes"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/cairn-fs/cairn/internal/block"
	"github.com/cairn-fs/cairn/internal/cluster"
)

// allMessages returns a fresh zero value of every type in this package
// that has a Decode method. TestAllMessagesListed keeps it complete.
func allMessages() []Message {
	return []Message{
		&Attr{},
		&Extent{},
		&PutReq{},
		&BlockReq{},
		&GetRangeReq{},
		&GetResp{},
		&HasResp{},
		&ErrorMessage{},
		&Empty{},
		&InoReq{},
		&AttrResp{},
		&ChangeResp{},
		&LookupReq{},
		&SetAttrReq{},
		&MakeReq{},
		&TmpfileReq{},
		&LinkReq{},
		&RemoveReq{},
		&RenameReq{},
		&ReadDirReq{},
		&ReadDirResp{},
		&ReadlinkResp{},
		&CommitReq{},
		&ExtentsResp{},
		&StatFSResp{},
		&HeartbeatReq{},
		&MapResp{},
		&SetXattrReq{},
		&XattrReq{},
		&XattrResp{},
		&XattrListResp{},
		&SessionReq{},
		&SessionResp{},
		&LockReq{},
		&LockResp{},
		&CountResp{},
		&FallocateReq{},
		&ListReq{},
		&ListResp{},
		&DeleteReq{},
		&DeleteResp{},
		&FetchReq{},
		&FetchResp{},
		&ScrubReq{},
		&ScrubResp{},
		&BadReplicaReq{},
		&DrainReq{},
		&TasksResp{},
		&TouchReq{},
		&TouchResp{},
		&FsckResp{},
		&OnceReq{},
		&BatchReq{},
		&BatchResp{},
		&SettingsResp{},
		&FsckReq{},
		&VerifyReq{},
		&VerifyResp{},
	}
}

func typeName(m Message) string { return reflect.TypeOf(m).Elem().Name() }

// TestAllMessagesListed parses the package's source and checks that every
// type with a Decode method is in allMessages, so a new message cannot
// escape the round-trip, truncation and fuzz tests.
func TestAllMessagesListed(t *testing.T) {
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	inSource := map[string]bool{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		{
			for _, d := range f.Decls {
				fn, ok := d.(*ast.FuncDecl)
				if !ok || fn.Recv == nil || fn.Name.Name != "Decode" {
					continue
				}
				typ := fn.Recv.List[0].Type
				if st, ok := typ.(*ast.StarExpr); ok {
					typ = st.X
				}
				if id, ok := typ.(*ast.Ident); ok {
					inSource[id.Name] = true
				}
			}
		}
	}
	listed := map[string]bool{}
	for _, m := range allMessages() {
		listed[typeName(m)] = true
	}
	for name := range inSource {
		if !listed[name] {
			t.Errorf("type %s has a Decode method but is missing from allMessages()", name)
		}
	}
	for name := range listed {
		if !inSource[name] {
			t.Errorf("allMessages() lists %s, which has no Decode method in the source", name)
		}
	}
}

// filler sets every field of a value to something non-zero (or random),
// by reflection, so that a field that Append forgets to write or Decode
// forgets to read shows up as a round-trip difference.
type filler struct {
	rng     *rand.Rand
	nonZero bool // every scalar non-zero, every slice and string non-empty
}

func (f *filler) fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		f.fill(v.Elem())
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(Error{}) {
			// Only real codes survive a round trip: Decode maps the
			// rest to CodeInternal on purpose (tested separately).
			v.Set(reflect.ValueOf(Error{Code: Code(1 + f.rng.IntN(int(codeEnd)-1)), Msg: f.str()}))
			return
		}
		for i := 0; i < v.NumField(); i++ {
			f.fill(v.Field(i))
		}
	case reflect.Bool:
		v.SetBool(f.nonZero || f.rng.IntN(2) == 1)
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		x := f.rng.Uint64() >> (64 - v.Type().Bits())
		if f.nonZero && x == 0 {
			x = 1
		}
		if !f.nonZero && f.rng.IntN(4) == 0 {
			x = 0
		}
		v.SetUint(x)
	case reflect.Int64:
		x := int64(f.rng.Uint64())
		if f.nonZero && x == 0 {
			x = -1
		}
		v.SetInt(x)
	case reflect.String:
		v.SetString(f.str())
	case reflect.Array:
		for i := 0; i < v.Len(); i++ {
			f.fill(v.Index(i))
		}
		if f.nonZero && v.Len() > 0 && v.Index(0).CanUint() && v.Index(0).Uint() == 0 {
			v.Index(0).SetUint(1)
		}
	case reflect.Slice:
		n := f.rng.IntN(4)
		if f.nonZero {
			n = 1 + f.rng.IntN(3)
		}
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := 0; i < n; i++ {
			f.fill(s.Index(i))
		}
		v.Set(s)
	default:
		panic(fmt.Sprintf("filler: unhandled kind %s (%s)", v.Kind(), v.Type()))
	}
}

func (f *filler) str() string {
	n := f.rng.IntN(12)
	if f.nonZero && n == 0 {
		n = 1
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(f.rng.Uint32())
	}
	return string(b)
}

// normalize turns empty slices into nil so that a decoded empty list
// (make(T, 0)) equals an unset one.
func normalize(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			normalize(v.Elem())
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			normalize(v.Field(i))
		}
	case reflect.Array:
		for i := 0; i < v.Len(); i++ {
			normalize(v.Index(i))
		}
	case reflect.Slice:
		if v.Len() == 0 {
			v.Set(reflect.Zero(v.Type()))
			return
		}
		for i := 0; i < v.Len(); i++ {
			normalize(v.Index(i))
		}
	}
}

func fresh(m Message) Message { return reflect.New(reflect.TypeOf(m).Elem()).Interface().(Message) }

// examples are hand-built values with every field set, the fuzz seeds.
func examples() []Message {
	id := block.Sum([]byte("cairn"))
	attr := Attr{Ino: 7, Mode: 0o100644, Uid: 1000, Gid: 100, Nlink: 2, Rdev: 3, Size: 1 << 40,
		Atime: -5, Mtime: 1700000000000000000, Ctime: 1700000000000000001}
	ext := Extent{Off: 4096, Len: 100, Block: id, BlockOff: 10, BlockLen: 200}
	node := cluster.Node{ID: "n1", Addr: "127.0.0.1:9000", Weight: 3, State: cluster.Down, Used: 5, Total: 9}
	return []Message{
		&attr,
		&ext,
		&PutReq{ID: id, Data: []byte("cairn")},
		&BlockReq{ID: id},
		&GetRangeReq{ID: id, Off: 16384, Len: 4096},
		&GetResp{Data: []byte{0, 1, 2, 255}},
		&HasResp{Has: true},
		&ErrorMessage{Err: Error{Code: CodeNotEmpty, Msg: "directory 5"}},
		&Empty{},
		&InoReq{Ino: 42},
		&AttrResp{Attr: attr},
		&ChangeResp{Attr: attr, Parent: Attr{Ino: 1, Nlink: 3, Mtime: 5}, NewParent: Attr{Ino: 9, Mode: 0o40755}, ParentWas: 4, NewParentWas: -7, At: 5},
		&LookupReq{Parent: 1, Name: "hello.txt"},
		&SetAttrReq{Ino: 9, Valid: SetMode | SetSize | SetMtime, Mode: 0o600, Uid: 1, Gid: 2, Size: 77, Atime: 3, Mtime: 4},
		&MakeReq{Parent: 1, Name: "link", Mode: 0o120777, Uid: 1, Gid: 2, Rdev: 8, Target: "../target", Umask: 0o022},
		&TmpfileReq{Parent: 1, Mode: 0o640, Uid: 1, Gid: 2, Umask: 0o022, Session: 79},
		&LinkReq{Ino: 5, Parent: 6, Name: "again"},
		&RemoveReq{Parent: 1, Name: "gone", Dir: true, Open: []uint64{5, 6}, Session: 77},
		&RenameReq{OldParent: 1, OldName: "a", NewParent: 2, NewName: "b", Flags: RenameExchange, Open: []uint64{9}, Session: 78},
		&SessionReq{Session: 0xfeedface, End: true},
		&SessionResp{TTL: 30e9},
		&LockReq{Session: 1, Ino: 2, Owner: 3, Pid: 4, Kind: LockFlock, Type: LockWrite, Start: 5, End: LockEnd, Wait: true},
		&LockResp{Conflict: true, Type: LockRead, Start: 10, End: 20, Pid: 99, Mtime: 1700000000000000002},
		&FallocateReq{Ino: 5, Mode: FallocPunchHole | FallocKeepSize, Off: 4096, Len: 1 << 33},
		&ReadDirReq{Ino: 1, After: "m", Limit: 100},
		&ReadDirResp{Entries: []DirEntry{{Name: "a", Attr: attr}, {Name: "b", Attr: Attr{Ino: 8}}}, More: true, Dir: attr},
		&ReadlinkResp{Target: "/some/where"},
		&CommitReq{Ino: 7, Extents: []Extent{ext, {Off: 1, Len: 1, BlockLen: 1}}, Mtime: 99},
		&ExtentsResp{Size: 12345, Extents: []Extent{ext}},
		&StatFSResp{Total: 1 << 50, Free: 1 << 49, Inodes: 1000, Replicas: 3},
		&HeartbeatReq{Node: node},
		&MapResp{Map: cluster.Map{Epoch: 12, Nodes: []cluster.Node{node, {ID: "n2", Addr: "x:1", Weight: 1}}}, Replicas: 2},
		&SetXattrReq{Ino: 7, Name: "user.mime_type", Value: []byte("text/plain\x00"), Flags: XattrCreate},
		&XattrReq{Ino: 7, Name: "security.selinux"},
		&XattrResp{Value: []byte{0, 1, 2}},
		&XattrListResp{Names: []string{"trusted.x", "user.a", ""}},
		&CountResp{Count: 1 << 40},
		&ListReq{After: id, Limit: 100},
		&ListResp{Blocks: []StoredBlock{{ID: id, Size: 4096, Age: 1e9}}, More: true},
		&DeleteReq{IDs: []block.ID{id, {}}, MinAge: 3e9},
		&DeleteResp{Deleted: 2, Freed: 8192},
		&FetchReq{ID: id, From: []string{"127.0.0.1:1", "127.0.0.1:2"}},
		&FetchResp{Moved: 4096},
		&ScrubReq{After: id, MaxBytes: 1 << 28},
		&ScrubResp{Bad: []block.ID{id}, Next: id, Done: true, Checked: 10, Bytes: 40960},
		&BadReplicaReq{ID: id, Addr: "127.0.0.1:3"},
		&DrainReq{Node: "n1"},
		&TouchReq{IDs: []block.ID{id}},
		&TouchResp{Missing: []block.ID{id, {}}},
		&OnceReq{ID: [16]byte{1, 2, 3}, Method: MMake, Body: []byte{9, 8, 7}},
		&BatchReq{Calls: []BatchCall{{Method: MLookup, Body: []byte{1, 2}}, {Method: MGetAttr}}},
		&BatchResp{Results: []BatchResult{{Body: []byte{3}}, {Err: Error{Code: CodeNotFound, Msg: "x"}}}},
		&SettingsResp{GCGrace: 300e9},
		&FsckReq{Verify: true},
		&VerifyReq{IDs: []block.ID{id}},
		&VerifyResp{Bad: []block.ID{id}, Missing: []block.ID{{}, id}},
		&FsckResp{Inodes: 1, Dirs: 2, Files: 3, Extents: 4, Blocks: 5, Copies: 6, ProblemCount: 7, NoteCount: 8,
			Problems: []string{"block x lost"}, Notes: []string{"block y awaits gc", ""}},
		&TasksResp{Blocks: 10, UnderReplicated: 2, Lost: 1, Garbage: 3, BytesMoved: 4, BytesReclaimed: 5, CorruptFound: 6,
			MoveNanos: 7, LastPass: 8, PassNanos: 9,
			Kinds: []TaskCount{{Kind: "repair", Queued: 1, Running: 2, Done: 3, Failed: 4}},
			Nodes: []NodeTasks{{ID: "n1", Blocks: 5, Running: 1, Scrubbed: 100}}, FileBytes: 11, BlockBytes: 12, StoredBytes: 13, DiskBytes: 14},
	}
}

func TestExamplesCoverEveryMessage(t *testing.T) {
	have := map[string]bool{}
	for _, m := range examples() {
		have[typeName(m)] = true
	}
	for _, m := range allMessages() {
		if !have[typeName(m)] {
			t.Errorf("examples() has no %s", typeName(m))
		}
	}
}

func roundTrip(t *testing.T, m Message) {
	t.Helper()
	enc := Marshal(m)
	got := fresh(m)
	if err := Unmarshal(enc, got); err != nil {
		t.Fatalf("%s: Unmarshal(Marshal(%+v)): %v", typeName(m), m, err)
	}
	want := fresh(m)
	reflect.ValueOf(want).Elem().Set(reflect.ValueOf(m).Elem())
	normalize(reflect.ValueOf(want))
	normalize(reflect.ValueOf(got))
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s round trip:\n got %+v\nwant %+v", typeName(m), got, want)
	}
	if again := Marshal(got); !bytes.Equal(again, enc) {
		t.Fatalf("%s: re-encoding differs:\n%x\n%x", typeName(m), again, enc)
	}
}

func TestRoundTripExamples(t *testing.T) {
	for _, m := range examples() {
		t.Run(typeName(m), func(t *testing.T) { roundTrip(t, m) })
	}
}

// TestRoundTripEveryFieldSet fills every field of every message by
// reflection, all non-zero, so a field missing from Append or Decode
// cannot hide behind a zero value.
func TestRoundTripEveryFieldSet(t *testing.T) {
	for _, proto := range allMessages() {
		t.Run(typeName(proto), func(t *testing.T) {
			for seed := uint64(0); seed < 50; seed++ {
				m := fresh(proto)
				f := &filler{rng: rand.New(rand.NewPCG(seed, 1)), nonZero: true}
				f.fill(reflect.ValueOf(m))
				roundTrip(t, m)
			}
		})
	}
}

func TestRoundTripRandom(t *testing.T) {
	for _, proto := range allMessages() {
		t.Run(typeName(proto), func(t *testing.T) {
			for seed := uint64(0); seed < 200; seed++ {
				m := fresh(proto)
				f := &filler{rng: rand.New(rand.NewPCG(seed, 2))}
				f.fill(reflect.ValueOf(m))
				roundTrip(t, m)
			}
		})
	}
}

func TestRoundTripZero(t *testing.T) {
	for _, proto := range allMessages() {
		if _, ok := proto.(*ErrorMessage); ok {
			continue // code 0 is not an error; see TestErrorMessageBadCode
		}
		t.Run(typeName(proto), func(t *testing.T) { roundTrip(t, fresh(proto)) })
	}
}

func isMalformed(err error) bool {
	var we *Error
	return errors.As(err, &we) && we.Code == CodeMalformed && errors.Is(err, ErrMalformed)
}

// TestTruncated checks that every proper prefix of a valid encoding fails
// to decode, with CodeMalformed, and that a trailing byte is refused too.
func TestTruncated(t *testing.T) {
	var all []Message
	all = append(all, examples()...)
	for _, proto := range allMessages() {
		for seed := uint64(0); seed < 10; seed++ {
			m := fresh(proto)
			(&filler{rng: rand.New(rand.NewPCG(seed, 3)), nonZero: seed%2 == 0}).fill(reflect.ValueOf(m))
			all = append(all, m)
		}
	}
	for _, m := range all {
		enc := Marshal(m)
		for i := 0; i < len(enc); i++ {
			err := Unmarshal(enc[:i:i], fresh(m))
			if err == nil {
				t.Fatalf("%s: prefix %d of %d bytes decoded without error", typeName(m), i, len(enc))
			}
			if !isMalformed(err) {
				t.Fatalf("%s: prefix %d: error %v is not CodeMalformed", typeName(m), i, err)
			}
		}
		long := append(append([]byte(nil), enc...), 0)
		if err := Unmarshal(long, fresh(m)); !isMalformed(err) {
			t.Fatalf("%s: trailing byte: got %v, want a malformed error", typeName(m), err)
		}
	}
}

func TestErrorMessageBadCode(t *testing.T) {
	for _, c := range []Code{CodeOK, codeEnd, codeEnd + 1, 0xffff} {
		enc := Marshal(&ErrorMessage{Err: Error{Code: c, Msg: "x"}})
		var em ErrorMessage
		if err := Unmarshal(enc, &em); err != nil {
			t.Fatalf("code %d: %v", c, err)
		}
		if em.Err.Code != CodeInternal || em.Err.Msg != "x" {
			t.Errorf("code %d decoded as %+v, want CodeInternal with the message kept", c, em.Err)
		}
	}
}

func TestBadBool(t *testing.T) {
	for _, b := range []byte{2, 0x80, 0xff} {
		if err := Unmarshal([]byte{b}, &HasResp{}); !isMalformed(err) {
			t.Errorf("bool byte %#x: got %v, want malformed", b, err)
		}
	}
}

func TestErrorIs(t *testing.T) {
	err := fmt.Errorf("wrapped: %w", Errorf(CodeNotFound, "inode %d", 3))
	if !errors.Is(err, ErrNotFound) {
		t.Error("errors.Is(wrapped NotFound, ErrNotFound) = false")
	}
	if errors.Is(err, ErrExists) {
		t.Error("errors.Is(NotFound, ErrExists) = true")
	}
	// A sentinel with a message matches only itself.
	if errors.Is(err, &Error{Code: CodeNotFound, Msg: "other"}) {
		t.Error("errors.Is matched a target with a different message")
	}
	for c := CodeOK; c <= codeEnd; c++ {
		if c.String() == "" {
			t.Errorf("code %d has no name", c)
		}
	}
	if len(codeNames) != int(codeEnd) {
		t.Errorf("codeNames has %d names for %d codes", len(codeNames), codeEnd)
	}
}

func TestMethodValid(t *testing.T) {
	if Method(0).Valid() || methodEnd.Valid() {
		t.Error("0 and methodEnd must be invalid")
	}
	for m := Method(1); m < methodEnd; m++ {
		if !m.Valid() {
			t.Errorf("method %d invalid", m)
		}
	}
}

// hostile builds inputs whose length prefixes claim far more than the
// input holds, for every place a length appears.
func hostile() map[string][]byte {
	huge := []byte{0xff, 0xff, 0xff, 0xff}
	big := []byte{0x10, 0, 0, 0} // 256 Mi
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	u64 := make([]byte, 8)
	u32 := make([]byte, 4)
	id := make([]byte, 32)
	return map[string][]byte{
		"GetResp.Data":         cat(huge, []byte("abc")),
		"PutReq.Data":          cat(id, big),
		"LookupReq.Name":       cat(u64, huge),
		"ReadDirResp.Entries":  cat(huge, make([]byte, 100)),
		"ReadDirResp.Entries2": cat(big),
		"CommitReq.Extents":    cat(u64, huge, make([]byte, 60)),
		"ExtentsResp.Extents":  cat(u64, big),
		"MapResp.Nodes":        cat(u64, u32, huge, make([]byte, 40)),
		"RemoveReq.Open":       cat(u64, u32, []byte{0}, huge, make([]byte, 8)),
		"RenameReq.Open":       cat(u64, u32, u64, u32, u32, huge),
		"ErrorMessage.Msg":     cat([]byte{0, 4}, huge),
		"HeartbeatReq.Node.ID": cat(huge),
		"ListResp.Blocks":      cat(huge, make([]byte, 40)),
		"DeleteReq.IDs":        cat(huge, make([]byte, 40)),
		"FetchReq.From":        cat(id, huge),
		"ScrubResp.Bad":        cat(big, make([]byte, 40)),
		"TasksResp.Kinds":      cat(make([]byte, 80), huge),
		"FsckResp.Problems":    cat(make([]byte, 64), huge),
		"OnceReq.Body":         cat(make([]byte, 18), huge),
		"BatchReq.Calls":       cat(huge, make([]byte, 12)),
		"BatchResp.Results":    cat(big, make([]byte, 20)),
	}
}

// TestHugeLengthFailsFast decodes inputs with absurd length prefixes into
// every message type and checks that each fails (or succeeds) without
// allocating more than a small multiple of the input.
func TestHugeLengthFailsFast(t *testing.T) {
	for name, in := range hostile() {
		for _, proto := range allMessages() {
			m := fresh(proto)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			err := Unmarshal(in, m)
			runtime.ReadMemStats(&after)
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<10 {
				t.Errorf("%s into %s: allocated %d bytes for %d bytes of input", name, typeName(m), alloc, len(in))
			}
			_ = err
		}
	}
	// The specific targets must fail.
	for name, in := range hostile() {
		target := strings.SplitN(name, ".", 2)[0]
		for _, proto := range allMessages() {
			if typeName(proto) != target {
				continue
			}
			if err := Unmarshal(in, fresh(proto)); !isMalformed(err) {
				t.Errorf("%s: got %v, want malformed", name, err)
			}
		}
	}
}

// decodedSize estimates the heap a decoded value holds: slice backing
// arrays and string bytes. Byte slices alias the input and cost nothing.
func decodedSize(v reflect.Value) uint64 {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return 0
		}
		return decodedSize(v.Elem())
	case reflect.Struct:
		var n uint64
		for i := 0; i < v.NumField(); i++ {
			n += decodedSize(v.Field(i))
		}
		return n
	case reflect.String:
		return uint64(v.Len())
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return 0
		}
		n := uint64(v.Cap()) * uint64(v.Type().Elem().Size())
		for i := 0; i < v.Len(); i++ {
			n += decodedSize(v.Index(i))
		}
		return n
	}
	return 0
}

// checkDecode is the fuzz body: decoding arbitrary bytes into every
// message must not panic, must not allocate far beyond the input, and a
// successful decode must re-encode to exactly the input (the encoding is
// canonical), except ErrorMessage which maps unknown codes on purpose.
func checkDecode(t *testing.T, data []byte) {
	for _, proto := range allMessages() {
		m := fresh(proto)
		err := Unmarshal(data, m)
		if size := decodedSize(reflect.ValueOf(m)); size > 4*uint64(len(data))+64 {
			t.Fatalf("%s: decoding %d bytes built %d bytes of values (err %v)", typeName(m), len(data), size, err)
		}
		if err != nil {
			if !isMalformed(err) {
				t.Fatalf("%s: error %v is not CodeMalformed", typeName(m), err)
			}
			continue
		}
		if em, ok := m.(*ErrorMessage); ok {
			if em.Err.Code == CodeOK || em.Err.Code >= codeEnd {
				t.Fatalf("ErrorMessage decoded to invalid code %d", em.Err.Code)
			}
			continue
		}
		if again := Marshal(m); !bytes.Equal(again, data) {
			t.Fatalf("%s: decoded %x but re-encodes as %x", typeName(m), data, again)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, m := range examples() {
		f.Add(Marshal(m))
	}
	for _, proto := range allMessages() {
		m := fresh(proto)
		(&filler{rng: rand.New(rand.NewPCG(1, 1)), nonZero: true}).fill(reflect.ValueOf(m))
		f.Add(Marshal(m))
	}
	names := make([]string, 0, len(hostile()))
	for name := range hostile() {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		f.Add(hostile()[name])
	}
	f.Add([]byte{})
	f.Fuzz(checkDecode)
}

// TestReaderAfterError checks that reads after the first error return
// zero values and keep the first error.
func TestReaderAfterError(t *testing.T) {
	r := Reader{buf: []byte{1, 2, 3}}
	if v := r.U32(); v != 0 || r.Err() == nil {
		t.Fatalf("U32 on 3 bytes = %d, %v", v, r.Err())
	}
	first := r.Err()
	if r.U8() != 0 || r.U16() != 0 || r.U64() != 0 || r.Bool() || r.String() != "" || r.Bytes() != nil ||
		r.ID() != (block.ID{}) || r.Count(1) != 0 {
		t.Fatal("a read after an error returned a non-zero value")
	}
	if r.Err() != first {
		t.Fatalf("error changed from %v to %v", first, r.Err())
	}
	r = Reader{buf: []byte{0, 0, 0, 3, 1, 2, 3}}
	if r.Count(2) != 0 || r.Err() == nil {
		t.Fatal("Count(2) of 3 items in 3 bytes succeeded")
	}
	r = Reader{buf: []byte{0, 0, 0, 3, 1, 2, 3}}
	if r.Count(0) != 3 || r.Err() != nil {
		t.Fatal("Count(0) of 3 items in 3 bytes failed")
	}
}

// TestBulkMatchesAppend: for every Bulk message, the head followed by the
// payload is exactly Append's encoding, so a frame written in two parts
// decodes like one.
func TestBulkMatchesAppend(t *testing.T) {
	bulk := 0
	for _, proto := range allMessages() {
		if _, ok := proto.(Bulk); !ok {
			continue
		}
		bulk++
		for seed := uint64(0); seed < 20; seed++ {
			m := fresh(proto)
			(&filler{rng: rand.New(rand.NewPCG(seed, 5)), nonZero: seed%2 == 0}).fill(reflect.ValueOf(m))
			b := m.(Bulk)
			two := append(b.AppendHead([]byte("x")), b.Payload()...)
			if want := m.Append([]byte("x")); !bytes.Equal(two, want) {
				t.Fatalf("%s: head+payload %x, Append %x", typeName(m), two, want)
			}
		}
	}
	if bulk < 2 {
		t.Fatalf("only %d Bulk messages; PutReq and GetResp should be", bulk)
	}
}
