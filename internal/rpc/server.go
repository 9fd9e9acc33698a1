package rpc

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"log/slog"
	"sync"

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
	ln     *quic.Listener
	mux    Mux
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Listen binds addr and starts serving mux in the background.
func Listen(addr string, tlsConf *tls.Config, mux Mux, log *slog.Logger) (*Server, error) {
	CheckUDPBuffers(log)
	ln, err := quic.ListenAddr(addr, tlsConf, quicConfig())
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{ln: ln, mux: mux, log: log, ctx: ctx, cancel: cancel}
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

func (s *Server) serveStream(conn *quic.Conn, st *quic.Stream) {
	defer s.wg.Done()
	defer st.Close()
	kind, body, err := readFrame(st, 6)
	if err != nil {
		var we *wire.Error
		if errors.As(err, &we) {
			s.reply(st, nil, we)
		}
		st.CancelRead(1)
		s.log.Warn("bad request frame", "peer", conn.RemoteAddr(), "err", err)
		return
	}
	m := wire.Method(binary.BigEndian.Uint16(kind))
	h := s.mux[m]
	if h == nil {
		s.reply(st, nil, wire.Errorf(wire.CodeUnknown, "method %d", m))
		return
	}
	resp, err := h(st.Context(), body)
	s.reply(st, resp, err)
}

func (s *Server) reply(st *quic.Stream, resp wire.Message, err error) {
	if err != nil {
		var we *wire.Error
		if !errors.As(err, &we) {
			we = &wire.Error{Code: wire.CodeInternal, Msg: err.Error()}
		}
		writeFrame(st, []byte{statusErr}, &wire.ErrorMessage{Err: *we})
		return
	}
	writeFrame(st, []byte{statusOK}, resp)
}
