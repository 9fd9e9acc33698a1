package metaserver

import "github.com/cairn-fs/cairn/internal/wire"

// changeResp answers a namespace change with the attributes of the
// directories it changed (parent, and newParent if it is another one),
// so that the client need not ask for them: the kernel asks for a
// directory's attributes after every change in it. They are read after
// the change's transaction, so they show it (and maybe later changes by
// others, which a GETATTR would show too). A directory that cannot be
// read any more (removed since) is left out as Ino 0.
func (s *Server) changeResp(a wire.Attr, dirs dirTimes, err error, parent, newParent uint64) (wire.Message, error) {
	if err != nil {
		return nil, err
	}
	resp := &wire.ChangeResp{Attr: a, ParentWas: dirs.was[parent], NewParentWas: dirs.was[newParent], At: dirs.at}
	if p, err := s.store.getAttr(parent); err == nil {
		resp.Parent = p
	}
	if newParent != 0 && newParent != parent {
		if p, err := s.store.getAttr(newParent); err == nil {
			resp.NewParent = p
		}
	}
	return resp, nil
}
