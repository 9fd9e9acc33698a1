package metaserver

import (
	"context"

	"github.com/cairn-fs/cairn/internal/rpc"
	"github.com/cairn-fs/cairn/internal/wire"
)

// batchMethods are the calls a client may send together in MBatch: reads,
// which answer the same whether they run alone or in a batch.
var batchMethods = map[wire.Method]bool{wire.MLookup: true, wire.MGetAttr: true}

// batchMux adds MBatch to m, answering each call with m's own handler,
// one after another, as if it had come alone.
func (s *Server) batchMux(m rpc.Mux) {
	rpc.On(m, wire.MBatch, func(ctx context.Context, r *wire.BatchReq) (wire.Message, error) {
		resp := &wire.BatchResp{Results: make([]wire.BatchResult, len(r.Calls))}
		for i, c := range r.Calls {
			res := &resp.Results[i]
			h := m[c.Method]
			if !batchMethods[c.Method] || h == nil {
				res.Err = wire.Error{Code: wire.CodeInvalid, Msg: "method " + c.Method.String() + " cannot be batched"}
				continue
			}
			out, err := h(ctx, c.Body)
			if err != nil {
				res.Err = *wire.AsError(err)
				continue
			}
			res.Body = wire.Marshal(out)
		}
		return resp, nil
	})
}
