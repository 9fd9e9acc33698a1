package wire

// BatchReq carries several read-only metaserver calls (MLookup,
// MGetAttr) in one round trip: a mount sends one when more of them are
// waiting than it lets run at once (client/reads.go). The metaserver
// answers each as it would alone, in order.
type BatchReq struct{ Calls []BatchCall }

// BatchCall is one call of a batch.
type BatchCall struct {
	Method Method
	Body   []byte // the method's request, encoded
}

func (m *BatchReq) Append(b []byte) []byte {
	b = AppendU32(b, uint32(len(m.Calls)))
	for _, c := range m.Calls {
		b = AppendBytes(AppendU16(b, uint16(c.Method)), c.Body)
	}
	return b
}

func (m *BatchReq) Decode(r *Reader) {
	m.Calls = make([]BatchCall, r.Count(2+4)) // a method, a body's length
	for i := range m.Calls {
		m.Calls[i] = BatchCall{Method: Method(r.U16()), Body: r.Bytes()}
	}
}

// BatchResp answers a BatchReq: one result per call, in the same order.
type BatchResp struct{ Results []BatchResult }

// BatchResult is one call's answer: its response, encoded, when Err.Code
// is CodeOK, else its error.
type BatchResult struct {
	Err  Error
	Body []byte
}

func (m *BatchResp) Append(b []byte) []byte {
	b = AppendU32(b, uint32(len(m.Results)))
	for _, res := range m.Results {
		b = AppendString(AppendU16(b, uint16(res.Err.Code)), res.Err.Msg)
		b = AppendBytes(b, res.Body)
	}
	return b
}

func (m *BatchResp) Decode(r *Reader) {
	m.Results = make([]BatchResult, r.Count(2+4+4)) // a code, a message's and a body's length
	for i := range m.Results {
		res := &m.Results[i]
		res.Err = Error{Code: Code(r.U16()), Msg: r.String()}
		if res.Err.Code >= codeEnd {
			res.Err.Code = CodeInternal
		}
		res.Body = r.Bytes()
	}
}
