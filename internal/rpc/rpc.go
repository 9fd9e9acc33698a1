// Package rpc carries wire messages over QUIC: one connection per peer,
// one call at a time per stream. A call writes a request frame on an idle
// stream (or a new one); the server answers with one response frame and
// waits for the stream's next request. A client ends a stream by closing
// its side.
//
//	request:  method uint16 | length uint32 | body
//	response: status uint8  | length uint32 | body (a wire.ErrorMessage if status is 1)
//
// Frames larger than wire.MaxMessage are refused before they are read.
package rpc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cairn-fs/cairn/internal/wire"
	"github.com/quic-go/quic-go"
)

func quicConfig() *quic.Config {
	return &quic.Config{
		HandshakeIdleTimeout:           5 * time.Second,
		MaxIdleTimeout:                 5 * time.Second, // a peer killed with -9 fails its calls within this
		KeepAlivePeriod:                time.Second,
		MaxIncomingStreams:             4096,
		InitialStreamReceiveWindow:     1 << 20,
		MaxStreamReceiveWindow:         16 << 20,
		InitialConnectionReceiveWindow: 4 << 20,
		MaxConnectionReceiveWindow:     64 << 20,
	}
}

const (
	statusOK  = 0
	statusErr = 1
)

// writeFrame writes a frame header (kind, then the body's length) and m's
// encoding, encoded straight after the header in one buffer. A Bulk
// message's payload is written from its own slice.
func writeFrame(w io.Writer, kind []byte, m wire.Message) error {
	hlen := len(kind) + 4
	frame := append(make([]byte, 0, hlen+256), kind...)
	frame = append(frame, 0, 0, 0, 0) // the body's length, once known
	var payload []byte
	if b, ok := m.(wire.Bulk); ok {
		frame, payload = b.AppendHead(frame), b.Payload()
	} else {
		frame = m.Append(frame)
	}
	binary.BigEndian.PutUint32(frame[hlen-4:hlen], uint32(len(frame)-hlen+len(payload)))
	if _, err := w.Write(frame); err != nil {
		return err
	}
	if len(payload) > 0 {
		if _, err := w.Write(payload); err != nil {
			return err
		}
	}
	return nil
}

// readFrame reads a frame whose header is hlen bytes (the first hlen-4
// are returned as kind) followed by a body.
func readFrame(r io.Reader, hlen int) (kind []byte, body []byte, err error) {
	kind, n, err := readHead(r, hlen)
	if err != nil {
		return nil, nil, err
	}
	body, err = readBody(r, n)
	return kind, body, err
}

// readHead reads a frame header; n is the length of the body that follows.
func readHead(r io.Reader, hlen int) (kind []byte, n uint32, err error) {
	head := make([]byte, hlen)
	if _, err := io.ReadFull(r, head); err != nil {
		return nil, 0, err
	}
	n = binary.BigEndian.Uint32(head[hlen-4:])
	if n > wire.MaxMessage {
		return nil, 0, wire.Errorf(wire.CodeMalformed, "frame of %d bytes exceeds the %d byte limit", n, wire.MaxMessage)
	}
	return head[:hlen-4], n, nil
}

func readBody(r io.Reader, n uint32) ([]byte, error) {
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("short frame: %w", err)
	}
	return body, nil
}

// IsConnError reports whether err means the peer could not be reached or
// the connection broke, as opposed to the peer answering with an error.
func IsConnError(err error) bool {
	var we *wire.Error
	return err != nil && !errors.As(err, &we)
}

// withDeadline bounds a call by d unless ctx already has a deadline.
func withDeadline(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}
