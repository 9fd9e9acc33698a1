package rpc

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-fs/cairn/internal/pki"
	"github.com/cairn-fs/cairn/internal/wire"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/quic-go/quic-go"
)

func newCA(t *testing.T) *pki.CA {
	t.Helper()
	ca, created, err := pki.LoadOrCreate(filepath.Join(t.TempDir(), "ca.pem"))
	if err != nil || !created {
		t.Fatalf("create CA: created=%v err=%v", created, err)
	}
	return ca
}

func tlsConf(t *testing.T, ca *pki.CA) *tls.Config {
	t.Helper()
	c, err := ca.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimSpace(p)))
	return len(p), nil
}

func testLog(t *testing.T) *slog.Logger { return slog.New(slog.NewTextHandler(testLogWriter{t}, nil)) }

// fixture is a server with a tiny mux and a count of handler runs.
type fixture struct {
	ca    *pki.CA
	srv   *Server
	calls atomic.Int32
}

func startServer(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{ca: newCA(t)}
	mux := Mux{}
	On(mux, wire.MGetAttr, func(_ context.Context, r *wire.InoReq) (wire.Message, error) {
		f.calls.Add(1)
		switch r.Ino {
		case 404:
			return nil, wire.Errorf(wire.CodeNotFound, "inode %d is nowhere", r.Ino)
		case 500:
			return nil, errors.New("plain error")
		}
		return &wire.AttrResp{Attr: wire.Attr{Ino: r.Ino, Size: r.Ino * 2, Mode: 0o100644}}, nil
	})
	On(mux, wire.CPut, func(_ context.Context, r *wire.PutReq) (wire.Message, error) {
		f.calls.Add(1)
		return &wire.GetResp{Data: r.Data}, nil
	})
	srv, err := Listen("127.0.0.1:0", tlsConf(t, f.ca), mux, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	t.Cleanup(func() { srv.Close() })
	return f
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newClient(t *testing.T, c *tls.Config) *Client {
	cl := NewClient(c)
	t.Cleanup(cl.Close)
	return cl
}

func TestCallOK(t *testing.T) {
	f := startServer(t)
	cl := newClient(t, tlsConf(t, f.ca)) // a second certificate from the same CA
	var resp wire.AttrResp
	if err := cl.Call(testCtx(t), f.srv.Addr(), wire.MGetAttr, &wire.InoReq{Ino: 21}, &resp); err != nil {
		t.Fatal(err)
	}
	if want := (wire.Attr{Ino: 21, Size: 42, Mode: 0o100644}); resp.Attr != want {
		t.Fatalf("got %+v, want %+v", resp.Attr, want)
	}
	if f.calls.Load() != 1 {
		t.Fatalf("handler ran %d times", f.calls.Load())
	}
}

func TestConcurrentCalls(t *testing.T) {
	f := startServer(t)
	cl := newClient(t, tlsConf(t, f.ca))
	ctx := testCtx(t)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			data := bytes.Repeat([]byte{byte(i)}, 1000*i)
			var resp wire.GetResp
			if err := cl.Call(ctx, f.srv.Addr(), wire.CPut, &wire.PutReq{Data: data}, &resp); err != nil {
				errs <- err
				return
			}
			if !bytes.Equal(resp.Data, data) {
				errs <- errors.New("echo differs")
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	cl.mu.Lock()
	n := len(cl.mu.peers)
	cl.mu.Unlock()
	if n != 1 {
		t.Errorf("client holds %d connections to one address, want 1", n)
	}
}

// refused checks that a call with client TLS config c fails without the
// handler ever running.
func refused(t *testing.T, f *fixture, c *tls.Config) {
	t.Helper()
	cl := newClient(t, c)
	ctx := testCtx(t)
	start := time.Now()
	err := cl.Call(ctx, f.srv.Addr(), wire.MGetAttr, &wire.InoReq{Ino: 1}, &wire.AttrResp{})
	if err == nil {
		t.Fatal("call succeeded")
	}
	if !IsConnError(err) {
		t.Errorf("error %v is a *wire.Error; a refused handshake is a connection error", err)
	}
	if ctx.Err() != nil {
		t.Errorf("call ended only at the test deadline (%v): %v", time.Since(start), err)
	}
	if n := f.calls.Load(); n != 0 {
		t.Fatalf("handler ran %d times for a refused peer", n)
	}
	t.Logf("refused after %v: %v", time.Since(start).Round(time.Millisecond), err)
}

// TestClientFromOtherCARefused: a client whose certificate comes from
// another cluster's CA, but which trusts this cluster's server, is
// refused by the server during the handshake.
func TestClientFromOtherCARefused(t *testing.T) {
	f := startServer(t)
	good := tlsConf(t, f.ca)
	c := tlsConf(t, newCA(t))
	c.RootCAs = good.RootCAs // trust the server: only the server's check can refuse
	refused(t, f, c)
}

// TestServerFromOtherCARefused: a client of another cluster refuses this
// cluster's server.
func TestServerFromOtherCARefused(t *testing.T) {
	f := startServer(t)
	refused(t, f, tlsConf(t, newCA(t)))
}

func TestClientWithoutCertificateRefused(t *testing.T) {
	f := startServer(t)
	c := tlsConf(t, f.ca)
	c.Certificates = nil
	refused(t, f, c)
}

func TestClientWrongALPNRefused(t *testing.T) {
	f := startServer(t)
	c := tlsConf(t, f.ca)
	c.NextProtos = []string{"cairn/0"}
	refused(t, f, c)
}

func TestHandlerErrorArrivesAsWireError(t *testing.T) {
	f := startServer(t)
	cl := newClient(t, tlsConf(t, f.ca))
	ctx := testCtx(t)

	err := cl.Call(ctx, f.srv.Addr(), wire.MGetAttr, &wire.InoReq{Ino: 404}, &wire.AttrResp{})
	var we *wire.Error
	if !errors.As(err, &we) {
		t.Fatalf("got %T %v, want *wire.Error", err, err)
	}
	if we.Code != wire.CodeNotFound || we.Msg != "inode 404 is nowhere" {
		t.Fatalf("got code %v msg %q", we.Code, we.Msg)
	}
	if !errors.Is(err, wire.ErrNotFound) || IsConnError(err) {
		t.Fatalf("errors.Is NotFound=%v IsConnError=%v", errors.Is(err, wire.ErrNotFound), IsConnError(err))
	}

	// A plain error becomes CodeInternal with its text.
	err = cl.Call(ctx, f.srv.Addr(), wire.MGetAttr, &wire.InoReq{Ino: 500}, &wire.AttrResp{})
	if !errors.As(err, &we) || we.Code != wire.CodeInternal || we.Msg != "plain error" {
		t.Fatalf("plain handler error arrived as %v", err)
	}

	// The connection is still good after error responses.
	var resp wire.AttrResp
	if err := cl.Call(ctx, f.srv.Addr(), wire.MGetAttr, &wire.InoReq{Ino: 3}, &resp); err != nil || resp.Attr.Ino != 3 {
		t.Fatalf("call after errors: %v %+v", err, resp)
	}
}

func TestUnknownMethod(t *testing.T) {
	f := startServer(t)
	cl := newClient(t, tlsConf(t, f.ca))
	for _, m := range []wire.Method{wire.MLookup, wire.Method(0), wire.Method(0xffff)} {
		err := cl.Call(testCtx(t), f.srv.Addr(), m, &wire.InoReq{Ino: 1}, &wire.AttrResp{})
		if !errors.Is(err, &wire.Error{Code: wire.CodeUnknown}) {
			t.Errorf("method %d: got %v, want CodeUnknown", m, err)
		}
	}
	if f.calls.Load() != 0 {
		t.Fatal("a handler ran")
	}
}

// TestMalformedRequestBody: a body that does not decode as the method's
// request type is answered with CodeMalformed and the handler never runs.
func TestMalformedRequestBody(t *testing.T) {
	f := startServer(t)
	cl := newClient(t, tlsConf(t, f.ca))
	// A LookupReq is longer than an InoReq: trailing bytes.
	err := cl.Call(testCtx(t), f.srv.Addr(), wire.MGetAttr, &wire.LookupReq{Parent: 1, Name: "x"}, &wire.AttrResp{})
	if !errors.Is(err, wire.ErrMalformed) {
		t.Fatalf("got %v, want CodeMalformed", err)
	}
	// And a response that does not decode as the expected type is malformed too.
	err = cl.Call(testCtx(t), f.srv.Addr(), wire.MGetAttr, &wire.InoReq{Ino: 1}, &wire.InoReq{})
	if !errors.Is(err, wire.ErrMalformed) {
		t.Fatalf("undecodable response: got %v, want CodeMalformed", err)
	}
	if f.calls.Load() != 1 {
		t.Fatalf("handler ran %d times, want 1 (only the second call)", f.calls.Load())
	}
}

// TestOversizedFrameRefusedEarly writes, over a raw QUIC stream, only
// the header of a request that claims MaxMessage+1 bytes and never the
// body: the server must answer CodeMalformed at once from the header.
func TestOversizedFrameRefusedEarly(t *testing.T) {
	f := startServer(t)
	ctx := testCtx(t)
	conn, err := quic.DialAddr(ctx, f.srv.Addr(), tlsConf(t, f.ca), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseWithError(0, "")
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	head := binary.BigEndian.AppendUint16(nil, uint16(wire.CPut))
	head = binary.BigEndian.AppendUint32(head, wire.MaxMessage+1)
	if _, err := st.Write(append(head, "only a little"...)); err != nil {
		t.Fatal(err)
	}
	// Do not close the write side: the server must not wait for more.
	st.SetReadDeadline(time.Now().Add(10 * time.Second))
	kind, body, err := readFrame(st, 5)
	if err != nil {
		t.Fatalf("no response to an oversized frame: %v", err)
	}
	if kind[0] != statusErr {
		t.Fatalf("status %d, want error", kind[0])
	}
	var em wire.ErrorMessage
	if err := wire.Unmarshal(body, &em); err != nil {
		t.Fatal(err)
	}
	if em.Err.Code != wire.CodeMalformed {
		t.Fatalf("got %v, want CodeMalformed", &em.Err)
	}
	if f.calls.Load() != 0 {
		t.Fatal("handler ran")
	}

	// The connection still serves calls.
	st2, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeFrame(st2, binary.BigEndian.AppendUint16(nil, uint16(wire.MGetAttr)), &wire.InoReq{Ino: 8}); err != nil {
		t.Fatal(err)
	}
	st2.Close()
	st2.SetReadDeadline(time.Now().Add(10 * time.Second))
	kind, body, err = readFrame(st2, 5)
	if err != nil || kind[0] != statusOK {
		t.Fatalf("call after oversized frame: status %v err %v", kind, err)
	}
	var ar wire.AttrResp
	if err := wire.Unmarshal(body, &ar); err != nil || ar.Attr.Ino != 8 {
		t.Fatalf("response %+v, %v", ar, err)
	}
}

// countingReader serves a header and then endless bytes, counting reads.
type countingReader struct {
	head []byte
	n    int
}

func (r *countingReader) Read(p []byte) (int, error) {
	if len(r.head) > 0 {
		k := copy(p, r.head)
		r.head = r.head[k:]
		r.n += k
		return k, nil
	}
	for i := range p {
		p[i] = 'x'
	}
	r.n += len(p)
	return len(p), nil
}

func TestReadFrameLimit(t *testing.T) {
	for _, hlen := range []int{5, 6} {
		for _, n := range []uint32{wire.MaxMessage + 1, 1 << 31, 0xffffffff} {
			head := make([]byte, hlen-4, hlen)
			head = binary.BigEndian.AppendUint32(head, n)
			r := &countingReader{head: head}
			_, _, err := readFrame(r, hlen)
			if !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("hlen %d length %d: got %v, want CodeMalformed", hlen, n, err)
			}
			if r.n != hlen {
				t.Fatalf("hlen %d length %d: read %d bytes, want only the %d byte header", hlen, n, r.n, hlen)
			}
		}
	}
	// Exactly MaxMessage is allowed (a GetResp is a 4-byte length and its data).
	var buf bytes.Buffer
	data := make([]byte, wire.MaxMessage-4)
	data[len(data)-1] = 7
	if err := writeFrame(&buf, []byte{statusOK}, &wire.GetResp{Data: data}); err != nil {
		t.Fatal(err)
	}
	kind, got, err := readFrame(&buf, 5)
	if err != nil || kind[0] != statusOK || len(got) != wire.MaxMessage {
		t.Fatalf("frame of MaxMessage bytes: kind %v err %v len %d", kind, err, len(got))
	}
	var gr wire.GetResp
	if err := wire.Unmarshal(got, &gr); err != nil || !bytes.Equal(gr.Data, data) {
		t.Fatalf("GetResp of MaxMessage-4 bytes: %v", err)
	}
}

func TestReadFrameShort(t *testing.T) {
	var buf bytes.Buffer
	writeFrame(&buf, []byte{0, 9}, &wire.ReadlinkResp{Target: "hello"})
	full := buf.Bytes()
	for i := 0; i < len(full); i++ {
		if _, _, err := readFrame(bytes.NewReader(full[:i]), 6); err == nil {
			t.Fatalf("prefix %d of a frame read without error", i)
		}
	}
	kind, body, err := readFrame(bytes.NewReader(full), 6)
	if err != nil || !bytes.Equal(kind, []byte{0, 9}) || !bytes.Equal(body, wire.Marshal(&wire.ReadlinkResp{Target: "hello"})) {
		t.Fatalf("kind %v body %q err %v", kind, body, err)
	}
	if _, _, err := readFrame(bytes.NewReader(nil), 6); !errors.Is(err, io.EOF) {
		t.Fatalf("empty input: %v, want EOF", err)
	}
}

// TestReconnectAfterServerRestart: a client keeps its connection across
// calls and redials once when the server went away and came back.
func TestReconnectAfterServerRestart(t *testing.T) {
	f := startServer(t)
	conf := tlsConf(t, f.ca)
	cl := newClient(t, conf)
	ctx := testCtx(t)
	addr := f.srv.Addr()
	if err := cl.Call(ctx, addr, wire.MGetAttr, &wire.InoReq{Ino: 1}, &wire.AttrResp{}); err != nil {
		t.Fatal(err)
	}
	f.srv.Close()
	mux := Mux{}
	On(mux, wire.MGetAttr, func(_ context.Context, r *wire.InoReq) (wire.Message, error) {
		return &wire.AttrResp{Attr: wire.Attr{Ino: r.Ino + 1000}}, nil
	})
	// Server.Close returns before quic-go has closed the UDP socket (it
	// does so asynchronously, ~10 ms later), so wait for the port.
	var srv2 *Server
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; {
		srv2, err = Listen(addr, tlsConf(t, f.ca), mux, testLog(t))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cannot rebind %s: %v", addr, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	defer srv2.Close()
	var resp wire.AttrResp
	if err := cl.Call(ctx, addr, wire.MGetAttr, &wire.InoReq{Ino: 1}, &resp); err != nil {
		t.Fatalf("call after restart: %v", err)
	}
	if resp.Attr.Ino != 1001 {
		t.Fatalf("answered by the wrong server: %+v", resp.Attr)
	}
}

// TestWriteFrameBulk: a Bulk message's frame carries exactly Append's bytes.
func TestWriteFrameBulk(t *testing.T) {
	for _, m := range []wire.Message{
		&wire.PutReq{ID: [32]byte{1, 2}, Data: []byte("payload bytes")},
		&wire.PutReq{},
		&wire.GetResp{Data: bytes.Repeat([]byte{9}, 70000)},
		&wire.InoReq{Ino: 5},
	} {
		var buf bytes.Buffer
		if err := writeFrame(&buf, []byte{0, 1}, m); err != nil {
			t.Fatal(err)
		}
		kind, body, err := readFrame(&buf, 6)
		if err != nil || !bytes.Equal(kind, []byte{0, 1}) || !bytes.Equal(body, wire.Marshal(m)) {
			t.Fatalf("%T: kind %v err %v; body differs from Marshal: %v", m, kind, err, !bytes.Equal(body, wire.Marshal(m)))
		}
		if buf.Len() != 0 {
			t.Fatalf("%T: %d bytes after the frame", m, buf.Len())
		}
	}
}

func TestCallCanceledContext(t *testing.T) {
	f := startServer(t)
	cl := newClient(t, tlsConf(t, f.ca))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := cl.Call(ctx, f.srv.Addr(), wire.MGetAttr, &wire.InoReq{Ino: 1}, &wire.AttrResp{})
	if err == nil || !IsConnError(err) {
		t.Fatalf("canceled call: %v", err)
	}
}

func TestIsConnError(t *testing.T) {
	if IsConnError(nil) {
		t.Error("nil is a connection error")
	}
	if IsConnError(wire.Errorf(wire.CodeIO, "x")) {
		t.Error("a wire error is a connection error")
	}
	if !IsConnError(io.EOF) {
		t.Error("EOF is not a connection error")
	}
}

// TestCallsShareAStream: calls one after another reuse one stream, so a
// call costs one packet each way (a stream per call costs twice that).
func TestCallsShareAStream(t *testing.T) {
	f := startServer(t)
	cl := newClient(t, tlsConf(t, f.ca))
	ctx := testCtx(t)
	call := func(ino uint64) {
		var resp wire.AttrResp
		if err := cl.Call(ctx, f.srv.Addr(), wire.MGetAttr, &wire.InoReq{Ino: ino}, &resp); err != nil || resp.Attr.Ino != ino {
			t.Fatalf("call %d: %+v, %v", ino, resp.Attr, err)
		}
	}
	call(1)
	p := cl.mu.peers[f.srv.Addr()]
	before := p.conn.ConnectionStats()
	const n = 200
	for i := range n {
		call(uint64(i + 2))
	}
	after := p.conn.ConnectionStats()
	packets := float64(after.PacketsSent+after.PacketsReceived-before.PacketsSent-before.PacketsReceived) / n
	if packets > 2.5 {
		t.Errorf("%.2f packets per call, want about 2", packets)
	}
	if len(p.idle) != 1 {
		t.Errorf("%d idle streams after calls made one at a time, want 1", len(p.idle))
	}
}

// TestAbandonedCallLeavesNoAnswerBehind: a call given up while the
// server is still working must not leave its late answer on a stream
// that a later call reads.
func TestAbandonedCallLeavesNoAnswerBehind(t *testing.T) {
	ca := newCA(t)
	mux := Mux{}
	On(mux, wire.MGetAttr, func(_ context.Context, r *wire.InoReq) (wire.Message, error) {
		if r.Ino == 1 {
			time.Sleep(200 * time.Millisecond)
		}
		return &wire.AttrResp{Attr: wire.Attr{Ino: r.Ino}}, nil
	})
	srv, err := Listen("127.0.0.1:0", tlsConf(t, ca), mux, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	cl := newClient(t, tlsConf(t, ca))
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := cl.Call(short, srv.Addr(), wire.MGetAttr, &wire.InoReq{Ino: 1}, &wire.AttrResp{}); err == nil {
		t.Fatal("a call past its deadline succeeded")
	}
	for ino := uint64(2); ino < 6; ino++ {
		var resp wire.AttrResp
		if err := cl.Call(testCtx(t), srv.Addr(), wire.MGetAttr, &wire.InoReq{Ino: ino}, &resp); err != nil {
			t.Fatal(err)
		}
		if resp.Attr.Ino != ino {
			t.Fatalf("call for inode %d got the answer for inode %d", ino, resp.Attr.Ino)
		}
		time.Sleep(60 * time.Millisecond) // past the abandoned call's answer
	}
}

// TestCallMetrics: the server counts its calls by method and result and
// times each.
func TestCallMetrics(t *testing.T) {
	f := startServer(t)
	cl := newClient(t, tlsConf(t, f.ca))
	for _, ino := range []uint64{1, 2, 404, 3} {
		cl.Call(testCtx(t), f.srv.Addr(), wire.MGetAttr, &wire.InoReq{Ino: ino}, &wire.AttrResp{})
	}
	m := f.srv.metrics
	if ok, failed := testutil.ToFloat64(m.calls.WithLabelValues("MGetAttr", "ok")), testutil.ToFloat64(m.calls.WithLabelValues("MGetAttr", "error")); ok != 3 || failed != 1 {
		t.Errorf("MGetAttr calls: %v ok, %v error; want 3 and 1", ok, failed)
	}
	var timed dto.Metric
	m.seconds.WithLabelValues("MGetAttr").(prometheus.Histogram).Write(&timed)
	if n := timed.GetHistogram().GetSampleCount(); n != 4 {
		t.Errorf("%d MGetAttr calls timed, want 4", n)
	}
}
