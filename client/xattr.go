package client

import (
	"context"
	"errors"

	"github.com/cairn-fs/cairn/internal/wire"
)

// GetXattr returns the value of extended attribute name of ino; an
// absent name is wire.CodeNoData.
func (c *Client) GetXattr(ctx context.Context, ino uint64, name string) ([]byte, error) {
	var resp wire.XattrResp
	err := c.meta(ctx, wire.MGetXattr, &wire.XattrReq{Ino: ino, Name: name}, &resp)
	return resp.Value, err
}

// ListXattr returns the names of ino's extended attributes.
func (c *Client) ListXattr(ctx context.Context, ino uint64) ([]string, error) {
	var resp wire.XattrListResp
	err := c.meta(ctx, wire.MListXattr, &wire.InoReq{Ino: ino}, &resp)
	return resp.Names, err
}

// SetXattr sets an extended attribute (flags as wire.XattrCreate, ...)
// and returns the inode's new attributes.
func (c *Client) SetXattr(ctx context.Context, ino uint64, name string, value []byte, flags uint32) (wire.Attr, error) {
	return c.attrCall(ctx, wire.MSetXattr, &wire.SetXattrReq{Ino: ino, Name: name, Value: value, Flags: flags})
}

// ACLCount returns how many POSIX ACLs the namespace holds.
func (c *Client) ACLCount(ctx context.Context) (uint64, error) {
	var resp wire.CountResp
	err := c.meta(ctx, wire.MACLCount, &wire.Empty{}, &resp)
	return resp.Count, err
}

// XattrsInUse reports whether the namespace may hold any extended
// attribute. A metaserver that predates the question says it may.
func (c *Client) XattrsInUse(ctx context.Context) (bool, error) {
	var resp wire.CountResp
	err := c.meta(ctx, wire.MXattrsInUse, &wire.Empty{}, &resp)
	if errors.Is(err, &wire.Error{Code: wire.CodeUnknown}) {
		return true, nil
	}
	return resp.Count > 0, err
}

// RemoveXattr removes an extended attribute; an absent name is
// wire.CodeNoData.
func (c *Client) RemoveXattr(ctx context.Context, ino uint64, name string) (wire.Attr, error) {
	return c.attrCall(ctx, wire.MRemoveXattr, &wire.XattrReq{Ino: ino, Name: name})
}
