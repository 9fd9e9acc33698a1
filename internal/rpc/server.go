package rpc

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/cairn-fs/cairn/internal/wire"
	"github.com/quic-go/quic-go"
)

// HandlerFunc serves one decoded request.
type HandlerFunc func(ctx context.Context, body []byte) (wire.Message, error)

// Mux routes methods to handlers.
type Mux map[wire.Method]HandlerFunc

// On registers f for method m, decoding the body into a fresh *Req.
func On[Req any, P interface {
	*Req
	wire.Message
}](mux Mux, m wire.Method, f func(ctx context.Context, req P) (wire.Message, error)) {
	mux[m] = func(ctx context.Context, body []byte) (wire.Message, error) {
		req := P(new(Req))
		if err := wire.Unmarshal(body, req); err != nil {
			return nil, err
		}
		return f(ctx, req)
	}
}

// Server answers calls on one UDP address.
type Server struct {
	ln      *quic.Listener
	mux     Mux
	log     *slog.Logger
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	budget  atomic.Pointer[byteBudget] // request bytes held at once; nil: no limit (budget.go)
	metrics *callMetrics
}

// Listen binds addr and starts serving mux in the background. It wraps
// mux's handlers, in place, to count and time their calls.
func Listen(addr string, tlsConf *tls.Config, mux Mux, log *slog.Logger) (*Server, error) {
	CheckUDPBuffers(log)
	metrics := newCallMetrics()
	metrics.instrument(mux)
	ln, err := quic.ListenAddr(addr, tlsConf, quicConfig())
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{ln: ln, mux: mux, log: log, ctx: ctx, cancel: cancel, metrics: metrics}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

// Addr is the bound address (useful after listening on port 0).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops accepting, closes every connection and waits for handlers.
func (s *Server) Close() error {
	s.cancel()
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.Accept(s.ctx)
		if err != nil {
			return
		}
		s.wg.Add(1)
		go s.serveConn(conn)
	}
}

func (s *Server) serveConn(conn *quic.Conn) {
	defer s.wg.Done()
	defer conn.CloseWithError(0, "server closing")
	go func() {
		<-s.ctx.Done()
		conn.CloseWithError(0, "server closing")
	}()
	for {
		st, err := conn.AcceptStream(s.ctx)
		if err != nil {
			return
		}
		s.wg.Add(1)
		go s.serveStream(conn, st)
	}
}

// serveStream answers the calls a client makes on st, one after another,
// until the client ends the stream.
func (s *Server) serveStream(conn *quic.Conn, st *quic.Stream) {
	defer s.wg.Done()
	defer st.Close()
	for s.serveCall(conn, st) {
	}
}

// serveCall reads one request from st and answers it. It reports whether
// st is at the next frame's start, ready for another call.
func (s *Server) serveCall(conn *quic.Conn, st *quic.Stream) bool {
	kind, n, err := readHead(st, 6)
	var reset *quic.StreamError
	if err == io.EOF || errors.As(err, &reset) || conn.Context().Err() != nil || s.ctx.Err() != nil {
		return false // the client is done with the stream or gave up a call on it, or the connection or the server closed
	}
	var body []byte
	if b := s.budget.Load(); err == nil && b != nil {
		var held int64
		if held, err = b.acquire(st.Context(), int64(n)); err == nil {
			defer b.release(held)
		}
	}
	if err == nil {
		body, err = readBody(st, n)
	}
	if err != nil {
		var we *wire.Error
		if errors.As(err, &we) {
			s.reply(st, nil, we) // CodeMalformed: the client drops the stream
		}
		st.CancelRead(1)
		s.log.Warn("bad request frame", "peer", conn.RemoteAddr(), "err", err)
		return false
	}
	m := wire.Method(binary.BigEndian.Uint16(kind))
	h := s.mux[m]
	if h == nil {
		s.reply(st, nil, wire.Errorf(wire.CodeUnknown, "method %d", m))
		return true
	}
	resp, err := h(st.Context(), body)
	s.reply(st, resp, err)
	return true
}

func (s *Server) reply(st *quic.Stream, resp wire.Message, err error) {
	if err != nil {
		writeFrame(st, []byte{statusErr}, &wire.ErrorMessage{Err: *wire.AsError(err)})
		return
	}
	writeFrame(st, []byte{statusOK}, resp)
}
