package client

import (
	"crypto/rand"

	"github.com/cairn-fs/cairn/internal/wire"
)

// onceWrap wraps a namespace change whose repetition would answer
// differently (create, link, unlink, rename) in an MOnce request with a
// fresh ID. meta sends the same wrapped request on every retry, so when
// a reply is lost the metaserver answers the retry with the first
// result: a retried create does not fail with EEXIST.
func onceWrap(m wire.Method, req wire.Message) (wire.Method, wire.Message) {
	switch m {
	case wire.MMake, wire.MLink, wire.MRemove, wire.MRename, wire.MTmpfile:
	default:
		return m, req
	}
	o := &wire.OnceReq{Method: m, Body: wire.Marshal(req)}
	rand.Read(o.ID[:])
	return wire.MOnce, o
}
