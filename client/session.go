package client

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"time"

	"github.com/cairn-fs/cairn/internal/wire"
)

// Each client holds a session in the metaserver, renewed in the
// background. The session owns the client's file locks and the files it
// keeps open after their last unlink; if the client dies they are
// released when the session expires (the metaserver's TTL). A session
// ID is random and kept for the client's life, so a metaserver restart
// is bridged by the next renewal (its locks are lost, though: see
// metaserver/lock.go).

func newSessionID() uint64 {
	var b [8]byte
	for {
		rand.Read(b[:])
		if id := binary.BigEndian.Uint64(b[:]); id != 0 {
			return id
		}
	}
}

// Session is this client's session ID.
func (c *Client) Session() uint64 { return c.session }

// renewSession opens or renews the session and returns its TTL.
func (c *Client) renewSession(ctx context.Context) (time.Duration, error) {
	var resp wire.SessionResp
	if err := c.rpc.Call(ctx, c.cfg.Meta, wire.MSession, &wire.SessionReq{Session: c.session}, &resp); err != nil {
		return 0, err
	}
	return time.Duration(resp.TTL), nil
}

// sessionLoop renews the session three times per TTL.
func (c *Client) sessionLoop() {
	defer c.wg.Done()
	every := time.Second
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ttl, err := c.renewSession(ctx)
		cancel()
		if err != nil {
			c.cfg.Log.Debug("renew session", "err", err)
			every = time.Second
		} else {
			every = max(ttl/3, 100*time.Millisecond)
		}
		select {
		case <-c.stop:
			return
		case <-time.After(every):
		}
	}
}

// endSession tells the metaserver this client is going: its locks and
// orphans go at once instead of at expiry.
func (c *Client) endSession() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.rpc.Call(ctx, c.cfg.Meta, wire.MSession, &wire.SessionReq{Session: c.session, End: true}, &wire.SessionResp{}); err != nil {
		c.cfg.Log.Debug("end session", "err", err)
	}
}
