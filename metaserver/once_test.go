package metaserver_test

import (
	"context"
	"errors"
	"syscall"
	"testing"

	"github.com/cairn-fs/cairn/internal/testcluster"
	"github.com/cairn-fs/cairn/internal/wire"
	"github.com/cairn-fs/cairn/metaserver"
)

// TestOnceRetry: a create, link, rename or unlink sent again with the same
// ID (its reply was lost) gets the first answer; sent plainly again it
// would fail.
func TestOnceRetry(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{NoMount: true})
	rc := chunkRPC(t, c)
	ctx := context.Background()
	call := func(id byte, m wire.Method, req wire.Message) (wire.Attr, error) {
		t.Helper()
		var resp wire.ChangeResp
		err := rc.Call(ctx, c.Meta.Addr(), wire.MOnce, &wire.OnceReq{ID: [16]byte{id, 42}, Method: m, Body: wire.Marshal(req)}, &resp)
		return resp.Attr, err
	}
	mk := &wire.MakeReq{Parent: metaserver.RootIno, Name: "f", Mode: syscall.S_IFREG | 0o644}
	first, err := call(1, wire.MMake, mk)
	if err != nil {
		t.Fatal(err)
	}
	again, err := call(1, wire.MMake, mk)
	if err != nil || again.Ino != first.Ino {
		t.Fatalf("retried create: ino %d, err %v; want the first answer, ino %d", again.Ino, err, first.Ino)
	}
	if _, err := call(2, wire.MMake, mk); !errors.Is(err, wire.ErrExists) {
		t.Fatalf("a new create of the same name: %v, want EEXIST", err)
	}
	steps := []struct {
		m   wire.Method
		req wire.Message
	}{
		{wire.MLink, &wire.LinkReq{Ino: first.Ino, Parent: metaserver.RootIno, Name: "g"}},
		{wire.MRename, &wire.RenameReq{OldParent: metaserver.RootIno, OldName: "g", NewParent: metaserver.RootIno, NewName: "h"}},
		{wire.MRemove, &wire.RemoveReq{Parent: metaserver.RootIno, Name: "h"}},
	}
	for i, st := range steps {
		id := byte(10 + i)
		if _, err := call(id, st.m, st.req); err != nil {
			t.Fatalf("method %d: %v", st.m, err)
		}
		if _, err := call(id, st.m, st.req); err != nil {
			t.Fatalf("method %d retried: %v, want the first answer", st.m, err)
		}
	}
	attr, err := c.Client.GetAttr(ctx, first.Ino)
	if err != nil || attr.Nlink != 1 {
		t.Fatalf("after link, rename, unlink, each retried: nlink %d, err %v; want 1", attr.Nlink, err)
	}
	if _, err := call(20, wire.MReadDir, &wire.ReadDirReq{Ino: 1}); !errors.Is(err, wire.ErrInvalid) {
		t.Fatalf("MOnce of a read: %v, want EINVAL", err)
	}
}
