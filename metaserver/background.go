package metaserver

import (
	"context"
	"crypto/tls"
	"time"

	"github.com/cairn-fs/cairn/internal/rpc"
	"github.com/cairn-fs/cairn/internal/wire"
)

func (cfg *Config) setTaskDefaults() {
	if cfg.GCGrace <= 0 {
		cfg.GCGrace = 5 * time.Minute
	}
	if cfg.ReconcileEvery <= 0 {
		cfg.ReconcileEvery = 5 * time.Minute
	}
	if cfg.ScrubEvery <= 0 {
		cfg.ScrubEvery = 24 * time.Hour
	}
	if cfg.ScrubBytes == 0 {
		cfg.ScrubBytes = 256 << 20
	}
	if cfg.TasksPerNode <= 0 {
		cfg.TasksPerNode = 4
	}
}

// startBackground starts the scheduler and the reconcile loop.
func (s *Server) startBackground(tlsConf *tls.Config) {
	s.chunks = rpc.NewClient(tlsConf)
	s.kick = make(chan struct{}, 1)
	s.sched = newScheduler(s)
	s.wg.Add(2)
	go s.sched.run(s.stop, &s.wg)
	go s.reconcileLoop()
}

func (s *Server) taskMux(m rpc.Mux) {
	s.onceMux(m)
	s.batchMux(m)
	rpc.On(m, wire.MReportBad, func(_ context.Context, r *wire.BadReplicaReq) (wire.Message, error) {
		return &wire.Empty{}, s.sched.reportBad(r.ID, r.Addr)
	})
	rpc.On(m, wire.MDrain, func(_ context.Context, r *wire.DrainReq) (wire.Message, error) {
		if _, err := s.members.drain(r.Node); err != nil {
			return nil, err
		}
		s.kickReconcile()
		return &wire.Empty{}, nil
	})
	rpc.On(m, wire.MFsck, func(ctx context.Context, r *wire.FsckReq) (wire.Message, error) {
		return s.fsck(ctx, r.Verify)
	})
	rpc.On(m, wire.MSettings, func(_ context.Context, _ *wire.Empty) (wire.Message, error) {
		return &wire.SettingsResp{GCGrace: int64(s.cfg.GCGrace)}, nil
	})
	rpc.On(m, wire.MTasks, func(_ context.Context, _ *wire.Empty) (wire.Message, error) {
		return s.sched.stats(), nil
	})
}
