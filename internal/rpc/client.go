package rpc

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cairn-fs/cairn/internal/wire"
	"github.com/quic-go/quic-go"
)

// DefaultTimeout bounds a call whose context has no deadline.
const DefaultTimeout = 30 * time.Second

// Client calls servers, keeping one QUIC connection per address and, on
// it, the streams of finished calls for the next calls to reuse.
type Client struct {
	tls *tls.Config
	mu  struct {
		sync.Mutex
		peers map[string]*peer // by address; replaced when broken
	}
}

// peer is one connection and its idle call streams.
type peer struct {
	conn *quic.Conn
	mu   sync.Mutex
	idle []*quic.Stream // streams between calls, the last freed on top
}

// maxIdleStreams bounds the streams a connection keeps between calls:
// more than the calls a client runs at once are of no use.
const maxIdleStreams = 64

// NewClient returns a client that presents and verifies with tlsConf.
func NewClient(tlsConf *tls.Config) *Client {
	c := &Client{tls: tlsConf}
	c.mu.peers = make(map[string]*peer)
	return c
}

// Close closes every connection.
func (c *Client) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for addr, p := range c.mu.peers {
		p.conn.CloseWithError(0, "client closing")
		delete(c.mu.peers, addr)
	}
}

func (c *Client) peer(ctx context.Context, addr string) (*peer, error) {
	c.mu.Lock()
	p := c.mu.peers[addr]
	c.mu.Unlock()
	if p != nil && p.conn.Context().Err() == nil {
		return p, nil
	}
	conn, err := quic.DialAddr(ctx, addr, c.tls, quicConfig())
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if old := c.mu.peers[addr]; old != nil && old.conn.Context().Err() == nil {
		// Another call connected first; use its connection.
		c.mu.Unlock()
		conn.CloseWithError(0, "duplicate")
		return old, nil
	}
	p = &peer{conn: conn}
	c.mu.peers[addr] = p
	c.mu.Unlock()
	return p, nil
}

func (c *Client) drop(addr string, p *peer) {
	c.mu.Lock()
	if c.mu.peers[addr] == p {
		delete(c.mu.peers, addr)
	}
	c.mu.Unlock()
	p.conn.CloseWithError(0, "broken")
}

// Call sends req to addr and decodes the answer into resp. An error the
// server returned is a *wire.Error; anything else (IsConnError) means
// the call did not get an answer and says which address failed.
func (c *Client) Call(ctx context.Context, addr string, m wire.Method, req, resp wire.Message) error {
	ctx, cancel := withDeadline(ctx, DefaultTimeout)
	defer cancel()
	var lastErr error
	for attempt := 0; attempt < 2; attempt++ {
		p, err := c.peer(ctx, addr)
		if err != nil {
			return fmt.Errorf("connect to %s: %w", addr, err)
		}
		out, err := p.roundTrip(ctx, m, req)
		if err == nil {
			return decodeResponse(out, resp)
		}
		lastErr = err
		if p.conn.Context().Err() == nil || ctx.Err() != nil || peerSilent(p.conn) {
			break
		}
		// The connection died (a server restart, an idle timeout): redial once.
		c.drop(addr, p)
	}
	return fmt.Errorf("call %s: %w", addr, lastErr)
}

// roundTrip makes one call on a stream of p's: an idle one if there is
// one, else a new one. A stream carries one call at a time and goes back
// to the idle ones only when its call ended cleanly, so that the next
// call finds it at a frame boundary. Reusing streams is what keeps a
// call to one packet each way: a stream per call costs the peer's
// MAX_STREAMS grant and the ACK it provokes, twice the packets.
func (p *peer) roundTrip(ctx context.Context, m wire.Method, req wire.Message) (frame respFrame, err error) {
	st, err := p.stream(ctx)
	if err != nil {
		return frame, err
	}
	stop := context.AfterFunc(ctx, func() { abandon(st) })
	reusable := false
	defer func() {
		if stop() && reusable {
			p.release(st)
		} else {
			abandon(st)
		}
	}()
	if err := writeFrame(st, binary.BigEndian.AppendUint16(nil, uint16(m)), req); err != nil {
		return frame, err
	}
	kind, out, err := readFrame(st, 5)
	if err != nil {
		if ctx.Err() != nil {
			return frame, ctx.Err()
		}
		return frame, err
	}
	frame = respFrame{body: out}
	if kind[0] != statusOK {
		var em wire.ErrorMessage
		if frame.err = wire.Unmarshal(out, &em); frame.err == nil {
			frame.err = &em.Err
		}
	}
	reusable = !frame.endsStream()
	return frame, nil
}

// stream returns an idle stream, or opens one.
func (p *peer) stream(ctx context.Context) (*quic.Stream, error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		st := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return st, nil
	}
	p.mu.Unlock()
	return p.conn.OpenStreamSync(ctx)
}

// release keeps st for the next call, or ends it when enough are kept.
func (p *peer) release(st *quic.Stream) {
	p.mu.Lock()
	if len(p.idle) < maxIdleStreams {
		p.idle = append(p.idle, st)
		st = nil
	}
	p.mu.Unlock()
	if st != nil {
		st.Close() // the server sees the end of its requests
		st.CancelRead(0)
	}
}

// abandon ends a stream whose call did not finish cleanly: what is left
// on it in either direction is not wanted.
func abandon(st *quic.Stream) {
	st.CancelRead(2)
	st.CancelWrite(2)
}

// respFrame is an answer as read from its stream.
type respFrame struct {
	body []byte // the encoded answer, if the call succeeded
	err  error  // else the server's *wire.Error, or why it could not be decoded
}

// endsStream reports whether the server ended the stream after this
// answer: it does after a request frame it could not read to its end
// (CodeMalformed), since it cannot tell where the next frame starts.
func (f respFrame) endsStream() bool {
	var we *wire.Error
	return f.err != nil && (!errors.As(f.err, &we) || we.Code == wire.CodeMalformed)
}

func decodeResponse(f respFrame, resp wire.Message) error {
	if f.err != nil {
		return f.err
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
