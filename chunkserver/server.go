// Package chunkserver stores blocks by content hash on local disk and
// serves them over QUIC. It verifies every block it receives and every
// block it reads against its hash, so it never stores or returns bytes
// that are not what the ID names. It heartbeats to the metaserver, which
// builds the cluster map from those heartbeats.
package chunkserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/cairn-fs/cairn/internal/block"
	"github.com/cairn-fs/cairn/internal/cluster"
	"github.com/cairn-fs/cairn/internal/pki"
	"github.com/cairn-fs/cairn/internal/rpc"
	"github.com/cairn-fs/cairn/internal/wire"
)

// Config configures a chunkserver. Zero values mean the defaults noted.
type Config struct {
	Dir       string        // data directory; required
	Addr      string        // UDP listen address; "127.0.0.1:0" if empty
	Advertise string        // address others dial; the bound address if empty
	Meta      string        // metaserver address; required
	CA        *pki.CA       // cluster CA; required
	Weight    uint64        // placement weight; the disk's size if zero
	Heartbeat time.Duration // heartbeat interval; 1s if zero
	ScrubRate int64         // bytes per second the scrub reads at most; 16 MiB/s if zero
	Log       *slog.Logger  // slog.Default() if nil

	// RequestBytes bounds the bytes of requests (blocks being put) held
	// at once, whatever the number of clients; DefaultRequestBytes if zero.
	RequestBytes int64
}

// DefaultRequestBytes lets 32 blocks of 4 MiB arrive at once.
const DefaultRequestBytes = 128 << 20

// Server is a running chunkserver.
type Server struct {
	cfg    Config
	id     string
	store  *diskStore
	rpc    *rpc.Server
	client *rpc.Client
	stop   chan struct{}
	wg     sync.WaitGroup
	stats  stats
}

// Start opens the block store in cfg.Dir, starts serving, and registers
// with the metaserver; it fails if the metaserver cannot be reached.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Dir == "" || cfg.Meta == "" || cfg.CA == nil {
		return nil, errors.New("chunkserver: Dir, Meta and CA are required")
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.ScrubRate <= 0 {
		cfg.ScrubRate = 16 << 20
	}
	if cfg.RequestBytes <= 0 {
		cfg.RequestBytes = DefaultRequestBytes
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("chunkserver data directory: %w", err)
	}
	if err := cfg.CA.CheckDir(cfg.Dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	id, err := nodeID(cfg.Dir)
	if err != nil {
		return nil, err
	}
	st, err := openDiskStore(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("chunkserver block store: %w", err)
	}
	if err := st.recoverDeletes(); err != nil {
		return nil, fmt.Errorf("chunkserver block store: %w", err)
	}
	tlsConf, err := cfg.CA.TLSConfig()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, id: id, store: st, client: rpc.NewClient(tlsConf), stop: make(chan struct{})}
	s.rpc, err = rpc.Listen(cfg.Addr, tlsConf, s.mux(), cfg.Log)
	if err != nil {
		return nil, fmt.Errorf("chunkserver listen on %s: %w", cfg.Addr, err)
	}
	s.rpc.LimitRequestBytes(cfg.RequestBytes)
	if s.cfg.Advertise == "" {
		s.cfg.Advertise = s.rpc.Addr()
	}
	if err := s.heartbeat(ctx); err != nil {
		s.rpc.Close()
		s.client.Close()
		return nil, fmt.Errorf("chunkserver cannot register with metaserver %s: %w", cfg.Meta, err)
	}
	// Only a directory that joined its cluster belongs to it.
	if err := cfg.CA.ClaimDir(cfg.Dir); err != nil {
		s.rpc.Close()
		s.client.Close()
		return nil, err
	}
	s.wg.Add(1)
	go s.heartbeatLoop()
	return s, nil
}

// Addr is the address the chunkserver serves on.
func (s *Server) Addr() string { return s.rpc.Addr() }

// ID is the chunkserver's stable node ID.
func (s *Server) ID() string { return s.id }

// Close stops heartbeating and serving.
func (s *Server) Close() error {
	close(s.stop)
	s.wg.Wait()
	s.client.Close()
	return s.rpc.Close()
}

func (s *Server) heartbeat(ctx context.Context) error {
	used, total := s.store.usage()
	weight := s.cfg.Weight
	if weight == 0 {
		weight = max(total, 1)
	}
	node := cluster.Node{ID: s.id, Addr: s.cfg.Advertise, Weight: weight, Used: used, Total: total}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return s.client.Call(ctx, s.cfg.Meta, wire.MHeartbeat, &wire.HeartbeatReq{Node: node}, &wire.MapResp{})
}

func (s *Server) heartbeatLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.Heartbeat)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		err := s.heartbeat(context.Background())
		switch {
		case err != nil && !failing:
			s.cfg.Log.Warn("heartbeat to metaserver failing", "meta", s.cfg.Meta, "err", err)
		case err == nil && failing:
			s.cfg.Log.Info("heartbeat to metaserver restored", "meta", s.cfg.Meta)
		}
		failing = err != nil
	}
}

func (s *Server) mux() rpc.Mux {
	m := rpc.Mux{}
	rpc.On(m, wire.CPut, func(_ context.Context, r *wire.PutReq) (wire.Message, error) {
		if len(r.Data) > block.MaxSize {
			return nil, wire.Errorf(wire.CodeTooBig, "block of %d bytes", len(r.Data))
		}
		// Hashing the block as a Bao tree checks it and yields the outboard
		// that later slices of it need, for little more than a plain hash.
		ob, ok := block.Outboard(r.ID, r.Data)
		if !ok {
			return nil, wire.Errorf(wire.CodeCorrupt, "block %s: data does not match its ID", r.ID.Short())
		}
		if err := s.store.put(r.ID, r.Data); err != nil {
			return nil, err
		}
		s.store.outboards.add(&outboardEntry{id: r.ID, size: uint64(len(r.Data)), outboard: ob})
		return &wire.Empty{}, nil
	})
	rpc.On(m, wire.CGet, func(_ context.Context, r *wire.BlockReq) (wire.Message, error) {
		data, err := s.store.get(r.ID)
		if errors.Is(err, wire.ErrCorrupt) {
			s.cfg.Log.Error("corrupt block", "block", r.ID.String(), "dir", s.cfg.Dir)
		}
		return &wire.GetResp{Data: data}, err
	})
	rpc.On(m, wire.CGetRange, func(_ context.Context, r *wire.GetRangeReq) (wire.Message, error) {
		data, err := s.store.getRange(r.ID, uint64(r.Off), uint64(r.Len))
		if errors.Is(err, wire.ErrCorrupt) {
			s.cfg.Log.Error("corrupt block", "block", r.ID.String(), "dir", s.cfg.Dir)
		}
		return &wire.GetResp{Data: data}, err
	})
	rpc.On(m, wire.CHas, func(_ context.Context, r *wire.BlockReq) (wire.Message, error) {
		return &wire.HasResp{Has: s.store.has(r.ID)}, nil
	})
	s.taskMux(m)
	return m
}
