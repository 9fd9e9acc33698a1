// Package wire defines cairn's protocol messages and their binary
// encoding. Every message appends itself to a byte slice (Append) and
// reads itself back from a Reader (Decode); a Reader never panics and
// never allocates more than the input could hold, so anything that
// arrives over the network can be decoded safely and fails with
// ErrMalformed instead.
//
// Integers are big-endian and fixed width; byte strings and lists carry a
// uint32 length prefix that is checked against what remains of the input.
package wire

import (
	"encoding/binary"
	"errors"

	"github.com/cairn-fs/cairn/internal/block"
)

// Version is the protocol version; it is part of the ALPN name so that
// peers speaking different versions refuse each other at the handshake.
// Version 2: a stream carries one call after another, not one call.
// Version 3: attributes carry the bytes a file stores (Attr.Stored); a
// waiting lock call has a number (LockReq.Call) that MCancelLock names.
const Version = 3

// ALPN is the TLS application protocol every cairn peer speaks.
const ALPN = "cairn/3"

// MaxMessage bounds a single request or response: one full block plus
// room for the message around it.
const MaxMessage = block.MaxSize + 1<<20

// MaxName is the longest directory entry name (as Linux's NAME_MAX).
const MaxName = 255

// Message is anything that travels in a request or response body.
type Message interface {
	Append(b []byte) []byte
	Decode(r *Reader)
}

// Bulk is a message that ends in a large byte string. A sender writes
// AppendHead's bytes and then Payload straight from its slice, so a block
// is never copied into a frame; the bytes on the wire are exactly what
// Append would produce.
type Bulk interface {
	Message
	AppendHead(b []byte) []byte
	Payload() []byte
}

// marshalCap is the room Marshal starts with: every small message fits
// (a ChangeResp takes 216 bytes), so encoding one is one allocation
// rather than one per doubling.
const marshalCap = 256

// Marshal encodes m into a fresh slice.
func Marshal(m Message) []byte { return m.Append(make([]byte, 0, marshalCap)) }

// Unmarshal decodes m from b, which must be consumed exactly.
func Unmarshal(b []byte, m Message) error {
	r := Reader{buf: b}
	m.Decode(&r)
	if r.err == nil && len(r.buf) != 0 {
		r.err = errors.New("trailing bytes")
	}
	if r.err != nil {
		return &Error{Code: CodeMalformed, Msg: "malformed message: " + r.err.Error()}
	}
	return nil
}

func AppendU8(b []byte, v uint8) []byte   { return append(b, v) }
func AppendU16(b []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(b, v) }
func AppendU32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }
func AppendU64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }
func AppendI64(b []byte, v int64) []byte  { return AppendU64(b, uint64(v)) }
func AppendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}
func AppendBytes(b, v []byte) []byte {
	b = AppendU32(b, uint32(len(v)))
	return append(b, v...)
}
func AppendString(b []byte, v string) []byte {
	b = AppendU32(b, uint32(len(v)))
	return append(b, v...)
}
func AppendID(b []byte, id block.ID) []byte { return append(b, id[:]...) }

// Reader decodes what the Append functions wrote. After the first error
// every read returns a zero value; Err reports the error.
type Reader struct {
	buf []byte
	err error
}

var errShort = errors.New("message too short")

func (r *Reader) Err() error { return r.err }

// Len is how many bytes are left to read.
func (r *Reader) Len() int { return len(r.buf) }

func (r *Reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.buf) {
		r.err = errShort
		return nil
	}
	b := r.buf[:n:n]
	r.buf = r.buf[n:]
	return b
}

func (r *Reader) U8() uint8 {
	if b := r.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *Reader) U16() uint16 {
	if b := r.take(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (r *Reader) U32() uint32 {
	if b := r.take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (r *Reader) U64() uint64 {
	if b := r.take(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

func (r *Reader) I64() int64 { return int64(r.U64()) }

func (r *Reader) Bool() bool {
	v := r.U8()
	if v > 1 && r.err == nil {
		r.err = errors.New("bad bool")
	}
	return v == 1
}

// Bytes returns a length-prefixed byte string. It aliases the input.
func (r *Reader) Bytes() []byte {
	n := r.U32()
	if uint64(n) > uint64(len(r.buf)) {
		if r.err == nil {
			r.err = errShort
		}
		return nil
	}
	return r.take(int(n))
}

func (r *Reader) String() string { return string(r.Bytes()) }

func (r *Reader) ID() block.ID {
	var id block.ID
	copy(id[:], r.take(len(id)))
	return id
}

// Count reads a list length and checks that the rest of the input could
// hold that many items of at least minSize bytes each, so a hostile
// length cannot make the decoder allocate more than the message carries.
func (r *Reader) Count(minSize int) int {
	n := r.U32()
	if r.err != nil {
		return 0
	}
	if minSize < 1 {
		minSize = 1
	}
	if uint64(n)*uint64(minSize) > uint64(len(r.buf)) {
		r.err = errors.New("list longer than message")
		return 0
	}
	return int(n)
}
