package wire

// OnceReq wraps a namespace change with an ID the client chose, so that
// when the reply is lost and the client sends it again, the metaserver
// answers with the first execution's result instead of executing it a
// second time (a retried create would otherwise fail with EEXIST, a
// retried unlink with ENOENT). The response is Method's own response.
type OnceReq struct {
	ID     [16]byte
	Method Method
	Body   []byte // the request of Method, encoded
}

func (m *OnceReq) Append(b []byte) []byte {
	b = append(b, m.ID[:]...)
	return AppendBytes(AppendU16(b, uint16(m.Method)), m.Body)
}

func (m *OnceReq) Decode(r *Reader) {
	copy(m.ID[:], r.take(len(m.ID)))
	m.Method = Method(r.U16())
	m.Body = r.Bytes()
}
