package metaserver_test

import (
	"context"
	"syscall"
	"testing"

	"github.com/cairn-fs/cairn/internal/testcluster"
	"github.com/cairn-fs/cairn/internal/wire"
	"github.com/cairn-fs/cairn/metaserver"
)

// TestBatchAnswersEachCallAsAlone: each call of an MBatch gets the answer
// it gets sent alone, errors included, in order; a change cannot ride in
// a batch.
func TestBatchAnswersEachCallAsAlone(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{NoMount: true})
	rc := chunkRPC(t, c)
	ctx := context.Background()
	f, err := c.Client.Make(ctx, &wire.MakeReq{Parent: metaserver.RootIno, Name: "f", Mode: syscall.S_IFREG | 0o640, Uid: 7})
	if err != nil {
		t.Fatal(err)
	}
	calls := []struct {
		m   wire.Method
		req wire.Message
	}{
		{wire.MLookup, &wire.LookupReq{Parent: metaserver.RootIno, Name: "f"}},
		{wire.MGetAttr, &wire.InoReq{Ino: f.Ino}},
		{wire.MLookup, &wire.LookupReq{Parent: metaserver.RootIno, Name: "absent"}},
		{wire.MGetAttr, &wire.InoReq{Ino: metaserver.RootIno}},
		{wire.MSetAttr, &wire.SetAttrReq{Ino: f.Ino, Valid: wire.SetMode, Mode: 0o600}},
		{wire.MGetAttr, &wire.InoReq{Ino: 1 << 40}},
	}
	req := &wire.BatchReq{}
	for _, call := range calls {
		req.Calls = append(req.Calls, wire.BatchCall{Method: call.m, Body: wire.Marshal(call.req)})
	}
	var resp wire.BatchResp
	if err := rc.Call(ctx, c.Meta.Addr(), wire.MBatch, req, &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.Results) != len(calls) {
		t.Fatalf("%d results for %d calls", len(resp.Results), len(calls))
	}
	for i, call := range calls {
		res := resp.Results[i]
		if call.m == wire.MSetAttr {
			if res.Err.Code != wire.CodeInvalid {
				t.Errorf("call %d: a setattr in a batch answered %v, want it refused as invalid", i, &res.Err)
			}
			continue
		}
		var alone wire.AttrResp
		aloneErr := rc.Call(ctx, c.Meta.Addr(), call.m, call.req, &alone)
		if aloneErr != nil {
			if res.Err != *wire.AsError(aloneErr) {
				t.Errorf("call %d (%v): batched error %v, alone %v", i, call.m, &res.Err, aloneErr)
			}
			continue
		}
		var batched wire.AttrResp
		if res.Err.Code != wire.CodeOK {
			t.Errorf("call %d (%v): batched error %v, alone it answered", i, call.m, &res.Err)
		} else if err := wire.Unmarshal(res.Body, &batched); err != nil || batched != alone {
			t.Errorf("call %d (%v): batched %+v (err %v), alone %+v", i, call.m, batched.Attr, err, alone.Attr)
		}
	}
	if a, err := c.Client.GetAttr(ctx, f.Ino); err != nil || a.Mode&0o777 != 0o640 {
		t.Errorf("after a batch holding a chmod: mode %o, err %v; want it unchanged, 640", a.Mode&0o777, err)
	}
}
