package rpc

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/cairn-fs/cairn/internal/wire"
	"github.com/quic-go/quic-go"
)

// DefaultTimeout bounds a call whose context has no deadline.
const DefaultTimeout = 30 * time.Second

// Client calls servers, keeping one QUIC connection per address.
type Client struct {
	tls *tls.Config
	mu  struct {
		sync.Mutex
		conns map[string]*quic.Conn // by address; replaced when broken
	}
}

// NewClient returns a client that presents and verifies with tlsConf.
func NewClient(tlsConf *tls.Config) *Client {
	c := &Client{tls: tlsConf}
	c.mu.conns = make(map[string]*quic.Conn)
	return c
}

// Close closes every connection.
func (c *Client) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for addr, conn := range c.mu.conns {
		conn.CloseWithError(0, "client closing")
		delete(c.mu.conns, addr)
	}
}

func (c *Client) conn(ctx context.Context, addr string) (*quic.Conn, error) {
	c.mu.Lock()
	conn := c.mu.conns[addr]
	c.mu.Unlock()
	if conn != nil && conn.Context().Err() == nil {
		return conn, nil
	}
	conn, err := quic.DialAddr(ctx, addr, c.tls, quicConfig())
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if old := c.mu.conns[addr]; old != nil && old.Context().Err() == nil {
		// Another call connected first; use its connection.
		c.mu.Unlock()
		conn.CloseWithError(0, "duplicate")
		return old, nil
	}
	c.mu.conns[addr] = conn
	c.mu.Unlock()
	return conn, nil
}

func (c *Client) drop(addr string, conn *quic.Conn) {
	c.mu.Lock()
	if c.mu.conns[addr] == conn {
		delete(c.mu.conns, addr)
	}
	c.mu.Unlock()
	conn.CloseWithError(0, "broken")
}

// Call sends req to addr and decodes the answer into resp. An error the
// server returned is a *wire.Error; anything else (IsConnError) means
// the call did not get an answer and says which address failed.
func (c *Client) Call(ctx context.Context, addr string, m wire.Method, req, resp wire.Message) error {
	ctx, cancel := withDeadline(ctx, DefaultTimeout)
	defer cancel()
	var lastErr error
	for attempt := 0; attempt < 2; attempt++ {
		conn, err := c.conn(ctx, addr)
		if err != nil {
			return fmt.Errorf("connect to %s: %w", addr, err)
		}
		out, err := c.roundTrip(ctx, conn, m, req)
		if err == nil {
			return decodeResponse(out, resp)
		}
		lastErr = err
		if conn.Context().Err() == nil || ctx.Err() != nil || peerSilent(conn) {
			break
		}
		// The connection died (a server restart, an idle timeout): redial once.
		c.drop(addr, conn)
	}
	return fmt.Errorf("call %s: %w", addr, lastErr)
}

func (c *Client) roundTrip(ctx context.Context, conn *quic.Conn, m wire.Method, req wire.Message) (frame respFrame, err error) {
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return frame, err
	}
	stop := context.AfterFunc(ctx, func() {
		st.CancelRead(2)
		st.CancelWrite(2)
	})
	defer stop()
	if err := writeFrame(st, binary.BigEndian.AppendUint16(nil, uint16(m)), req); err != nil {
		st.CancelRead(2)
		return frame, err
	}
	st.Close()
	kind, out, err := readFrame(st, 5)
	if err != nil {
		if ctx.Err() != nil {
			return frame, ctx.Err()
		}
		return frame, err
	}
	// Drain to EOF so the stream is fully consumed.
	io.Copy(io.Discard, io.LimitReader(st, 1))
	return respFrame{status: kind[0], body: out}, nil
}

type respFrame struct {
	status byte
	body   []byte
}

func decodeResponse(f respFrame, resp wire.Message) error {
	if f.status != statusOK {
		var em wire.ErrorMessage
		if err := wire.Unmarshal(f.body, &em); err != nil {
			return err
		}
		return &em.Err
	}
	return wire.Unmarshal(f.body, resp)
}

// peerSilent reports whether conn died because the peer stopped answering
// (killed, or its host is gone): redialing it would only wait out the
// handshake timeout too.
func peerSilent(conn *quic.Conn) bool {
	var idle *quic.IdleTimeoutError
	return errors.As(context.Cause(conn.Context()), &idle)
}
