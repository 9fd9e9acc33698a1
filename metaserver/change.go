package metaserver

import "github.com/cairn-fs/cairn/internal/wire"

// changeResp answers a namespace change with the attributes of the
// directories it changed (parent, and newParent if it is another one),
// as the change left them, so that the client need not ask for them: the
// kernel asks for a directory's attributes after every change in it. A
// directory the change did not touch is left out as Ino 0.
func (s *Server) changeResp(a wire.Attr, dirs dirChange, err error, parent, newParent uint64) (wire.Message, error) {
	if err != nil {
		return nil, err
	}
	resp := &wire.ChangeResp{Attr: a, At: dirs.at}
	resp.Parent, resp.ParentWas = dirs.dir(parent)
	if newParent != parent {
		resp.NewParent, resp.NewParentWas = dirs.dir(newParent)
	}
	return resp, nil
}
