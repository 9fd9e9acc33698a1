// Package metaserver keeps cairn's namespace — inodes, directory entries,
// symlinks, file layouts and block reference counts — in Badger, and the
// cluster map of chunkservers. It serves clients and chunkservers over
// QUIC. Every namespace operation is one Badger transaction; a write
// commit is synced before it is acknowledged, everything else within the
// group-commit interval (100 ms).
package metaserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cairn-fs/cairn/internal/pki"
	"github.com/cairn-fs/cairn/internal/rpc"
	"github.com/cairn-fs/cairn/internal/wire"
)

// Config configures a metaserver. Zero values mean the defaults noted.
type Config struct {
	Dir       string        // data directory; required
	Addr      string        // UDP listen address; "127.0.0.1:0" if empty
	CA        *pki.CA       // cluster CA; required
	Replicas  int           // copies of each block; 3 if zero
	DownAfter time.Duration // silence before a chunkserver is marked down; 15s if zero
	Log       *slog.Logger  // slog.Default() if nil

	// CacheBytes is the memory for Badger's caches of table blocks and
	// of table indexes and Bloom filters; DefaultCacheBytes if zero.
	CacheBytes int64

	// SessionTTL is how long a client session lives without renewal
	// before its locks and orphans are dropped; 30s if zero.
	SessionTTL time.Duration

	// Background work (scheduler.go).
	GCGrace        time.Duration // unreferenced blocks are kept this long; 5m if zero
	ReconcileEvery time.Duration // interval between reconcile passes; 5m if zero (a membership change starts one at once)
	ScrubEvery     time.Duration // interval between scrub rounds on each chunkserver; 24h if zero
	ScrubBytes     uint64        // bytes one scrub task re-hashes; 256 MiB if zero
	TasksPerNode   int           // tasks running at once on one chunkserver; 4 if zero
}

// Server is a running metaserver.
type Server struct {
	cfg     Config
	store   *store
	members *members
	rpc     *rpc.Server
	stop    chan struct{}
	wg      sync.WaitGroup

	// sessions and locks are in memory only: a restart loses them.
	sessions *sessions
	locks    *lockTable

	sched  *scheduler
	chunks *rpc.Client   // to chunkservers, for background tasks
	kick   chan struct{} // asks for a reconcile pass now
}

// Start opens the namespace in cfg.Dir and starts serving.
func Start(cfg Config) (*Server, error) {
	if cfg.Dir == "" || cfg.CA == nil {
		return nil, errors.New("metaserver: Dir and CA are required")
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 3
	}
	if cfg.DownAfter <= 0 {
		cfg.DownAfter = 15 * time.Second
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 30 * time.Second
	}
	if cfg.CacheBytes <= 0 {
		cfg.CacheBytes = DefaultCacheBytes
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	cfg.setTaskDefaults()
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("metaserver data directory: %w", err)
	}
	if err := cfg.CA.ClaimDir(cfg.Dir); err != nil {
		return nil, err
	}
	tlsConf, err := cfg.CA.TLSConfig()
	if err != nil {
		return nil, err
	}
	st, err := openStoreSized(filepath.Join(cfg.Dir, "badger"), cfg.Log, cfg.CacheBytes)
	if err != nil {
		return nil, err
	}
	ms, err := newMembers(st, cfg.DownAfter)
	if err != nil {
		st.close()
		return nil, err
	}
	s := &Server{cfg: cfg, store: st, members: ms, stop: make(chan struct{}),
		sessions: newSessions(cfg.SessionTTL), locks: newLockTable()}
	if err := s.adoptOrphans(); err != nil {
		st.close()
		return nil, fmt.Errorf("metaserver: orphaned files: %w", err)
	}
	s.rpc, err = rpc.Listen(cfg.Addr, tlsConf, s.mux(), cfg.Log)
	if err != nil {
		st.close()
		return nil, fmt.Errorf("metaserver listen on %s: %w", cfg.Addr, err)
	}
	s.wg.Add(1)
	go s.watchMembers()
	s.startBackground(tlsConf)
	return s, nil
}

// Addr is the address the metaserver serves on.
func (s *Server) Addr() string { return s.rpc.Addr() }

// Close stops serving and closes the store, syncing it.
func (s *Server) Close() error {
	close(s.stop)
	s.wg.Wait()
	s.chunks.Close()
	s.rpc.Close()
	return s.store.close()
}

func (s *Server) watchMembers() {
	defer s.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			s.members.markDown(now)
			s.expireSessions(now)
		}
	}
}

func attrResp(a wire.Attr, err error) (wire.Message, error) {
	if err != nil {
		return nil, err
	}
	return &wire.AttrResp{Attr: a}, nil
}

func (s *Server) mux() rpc.Mux {
	m := rpc.Mux{}
	rpc.On(m, wire.MLookup, func(_ context.Context, r *wire.LookupReq) (wire.Message, error) {
		return attrResp(s.store.lookup(r.Parent, r.Name))
	})
	rpc.On(m, wire.MGetAttr, func(_ context.Context, r *wire.InoReq) (wire.Message, error) {
		return attrResp(s.store.getAttr(r.Ino))
	})
	rpc.On(m, wire.MSetAttr, func(_ context.Context, r *wire.SetAttrReq) (wire.Message, error) {
		return attrResp(s.store.setAttr(r))
	})
	rpc.On(m, wire.MMake, func(_ context.Context, r *wire.MakeReq) (wire.Message, error) {
		a, dirs, err := s.store.make(r)
		return s.changeResp(a, dirs, err, r.Parent, 0)
	})
	rpc.On(m, wire.MTmpfile, func(_ context.Context, r *wire.TmpfileReq) (wire.Message, error) {
		return attrResp(s.store.tmpfile(r))
	})
	rpc.On(m, wire.MLink, func(_ context.Context, r *wire.LinkReq) (wire.Message, error) {
		a, dirs, err := s.store.link(r)
		return s.changeResp(a, dirs, err, r.Parent, 0)
	})
	rpc.On(m, wire.MRemove, func(_ context.Context, r *wire.RemoveReq) (wire.Message, error) {
		a, dirs, err := s.store.remove(r)
		return s.changeResp(a, dirs, err, r.Parent, 0)
	})
	rpc.On(m, wire.MRename, func(_ context.Context, r *wire.RenameReq) (wire.Message, error) {
		a, dirs, err := s.store.rename(r)
		return s.changeResp(a, dirs, err, r.OldParent, r.NewParent)
	})
	rpc.On(m, wire.MPurge, func(_ context.Context, r *wire.InoReq) (wire.Message, error) {
		return &wire.Empty{}, s.store.purge(r.Ino)
	})
	rpc.On(m, wire.MReadDir, func(_ context.Context, r *wire.ReadDirReq) (wire.Message, error) {
		resp, err := s.store.readDir(r)
		if err == nil && r.After == "" {
			resp.Dir = s.touchAtime(r.Ino) // a listing from the start reads the directory
		}
		return &resp, err
	})
	rpc.On(m, wire.MReadlink, func(_ context.Context, r *wire.InoReq) (wire.Message, error) {
		t, err := s.store.readlink(r.Ino)
		return &wire.ReadlinkResp{Target: t}, err
	})
	rpc.On(m, wire.MCommit, func(_ context.Context, r *wire.CommitReq) (wire.Message, error) {
		a, err := s.store.commit(r)
		if err == nil {
			err = s.store.sync() // durable before acknowledged
		}
		return attrResp(a, err)
	})
	rpc.On(m, wire.MExtents, func(_ context.Context, r *wire.InoReq) (wire.Message, error) {
		resp, err := s.store.layout(r.Ino)
		return &resp, err
	})
	rpc.On(m, wire.MAccessed, func(_ context.Context, r *wire.InoReq) (wire.Message, error) {
		s.touchAtime(r.Ino)
		return &wire.Empty{}, nil
	})
	rpc.On(m, wire.MStatFS, func(_ context.Context, _ *wire.Empty) (wire.Message, error) {
		return s.statFS(), nil
	})
	rpc.On(m, wire.MMap, func(_ context.Context, _ *wire.Empty) (wire.Message, error) {
		return &wire.MapResp{Map: s.members.snapshot(), Replicas: uint32(s.cfg.Replicas)}, nil
	})
	rpc.On(m, wire.MSync, func(_ context.Context, _ *wire.Empty) (wire.Message, error) {
		return &wire.Empty{}, s.store.sync()
	})
	rpc.On(m, wire.MGetXattr, func(_ context.Context, r *wire.XattrReq) (wire.Message, error) {
		v, err := s.store.getXattr(r)
		return &wire.XattrResp{Value: v}, err
	})
	rpc.On(m, wire.MListXattr, func(_ context.Context, r *wire.InoReq) (wire.Message, error) {
		names, err := s.store.listXattr(r.Ino)
		return &wire.XattrListResp{Names: names}, err
	})
	rpc.On(m, wire.MSetXattr, func(_ context.Context, r *wire.SetXattrReq) (wire.Message, error) {
		return attrResp(s.store.setXattr(r))
	})
	rpc.On(m, wire.MRemoveXattr, func(_ context.Context, r *wire.XattrReq) (wire.Message, error) {
		return attrResp(s.store.removeXattr(r))
	})
	rpc.On(m, wire.MSession, func(_ context.Context, r *wire.SessionReq) (wire.Message, error) {
		return s.session(r)
	})
	rpc.On(m, wire.MGetLock, func(_ context.Context, r *wire.LockReq) (wire.Message, error) {
		return s.locks.get(r)
	})
	rpc.On(m, wire.MCancelLock, func(_ context.Context, r *wire.LockReq) (wire.Message, error) {
		if r.Session == 0 || r.Call == 0 {
			return nil, wire.Errorf(wire.CodeInvalid, "lock cancel without a session or call")
		}
		s.locks.cancel(r)
		return &wire.Empty{}, nil
	})
	rpc.On(m, wire.MSetLock, func(ctx context.Context, r *wire.LockReq) (wire.Message, error) {
		if r.Session == 0 {
			return nil, wire.Errorf(wire.CodeInvalid, "lock without a session")
		}
		s.sessions.renew(r.Session, time.Now())
		resp, err := s.locks.set(ctx, r)
		if err == nil && !resp.Conflict && r.Type != wire.LockUnlock {
			// Mtime 0 (unknown) makes the client drop its caches.
			if a, err := s.store.getAttr(r.Ino); err == nil {
				resp.Mtime = a.Mtime
			}
		}
		return resp, err
	})
	rpc.On(m, wire.MACLCount, func(_ context.Context, _ *wire.Empty) (wire.Message, error) {
		n, err := s.store.aclCount()
		return &wire.CountResp{Count: n}, err
	})
	rpc.On(m, wire.MXattrsInUse, func(_ context.Context, _ *wire.Empty) (wire.Message, error) {
		resp := &wire.CountResp{}
		if s.store.xattrsInUse() {
			resp.Count = 1
		}
		return resp, nil
	})
	rpc.On(m, wire.MFallocate, func(_ context.Context, r *wire.FallocateReq) (wire.Message, error) {
		return attrResp(s.store.fallocate(r))
	})
	rpc.On(m, wire.MHeartbeat, func(_ context.Context, r *wire.HeartbeatReq) (wire.Message, error) {
		if r.Node.ID == "" || r.Node.Addr == "" {
			return nil, wire.Errorf(wire.CodeInvalid, "heartbeat without node ID or address")
		}
		if err := s.members.heartbeat(r.Node); err != nil {
			return nil, err
		}
		return &wire.MapResp{Map: s.members.snapshot(), Replicas: uint32(s.cfg.Replicas)}, nil
	})
	s.taskMux(m)
	return m
}

func (s *Server) statFS() *wire.StatFSResp {
	m := s.members.snapshot()
	r := &wire.StatFSResp{Replicas: uint32(s.cfg.Replicas)}
	for _, n := range m.Nodes {
		r.Total += n.Total
		if n.Total > n.Used {
			r.Free += n.Total - n.Used
		}
	}
	copies := uint64(min(s.cfg.Replicas, max(len(m.Nodes), 1)))
	r.Total /= copies
	r.Free /= copies
	s.store.mu.Lock()
	r.Inodes = s.store.mu.inodes
	s.store.mu.Unlock()
	return r
}
