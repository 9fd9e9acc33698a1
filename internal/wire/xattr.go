package wire

import "strings"

// Extended attribute limits, as Linux's XATTR_NAME_MAX, XATTR_SIZE_MAX
// and XATTR_LIST_MAX.
const (
	MaxXattrName  = 255
	MaxXattrValue = 65536
	MaxXattrList  = 65536 // the names of one inode, each with its NUL
)

// SetXattrReq flags. The first two are setxattr(2)'s.
const (
	XattrCreate   uint32 = 1      // fail with CodeExists if the name is set
	XattrReplace  uint32 = 2      // fail with CodeNoData if the name is not set
	XattrKillSgid uint32 = 1 << 8 // clear the setgid bit too (a POSIX ACL set by a non-member of the group)
)

// SetXattrReq sets extended attribute Name of inode Ino to Value; the
// inode's ctime becomes now. Setting system.posix_acl_access also sets
// the permission bits the ACL implies.
type SetXattrReq struct {
	Ino   uint64
	Name  string
	Value []byte
	Flags uint32
}

func (m *SetXattrReq) Append(b []byte) []byte {
	b = AppendU64(b, m.Ino)
	b = AppendString(b, m.Name)
	b = AppendBytes(b, m.Value)
	return AppendU32(b, m.Flags)
}

func (m *SetXattrReq) Decode(r *Reader) {
	m.Ino = r.U64()
	m.Name = r.String()
	m.Value = r.Bytes()
	m.Flags = r.U32()
}

// XattrReq names one extended attribute of an inode (get, remove).
type XattrReq struct {
	Ino  uint64
	Name string
}

func (m *XattrReq) Append(b []byte) []byte { return AppendString(AppendU64(b, m.Ino), m.Name) }
func (m *XattrReq) Decode(r *Reader)       { m.Ino = r.U64(); m.Name = r.String() }

// XattrResp is an extended attribute's value.
type XattrResp struct{ Value []byte }

func (m *XattrResp) Append(b []byte) []byte { return AppendBytes(b, m.Value) }
func (m *XattrResp) Decode(r *Reader)       { m.Value = r.Bytes() }

// CountResp is a count.
type CountResp struct{ Count uint64 }

func (m *CountResp) Append(b []byte) []byte { return AppendU64(b, m.Count) }
func (m *CountResp) Decode(r *Reader)       { m.Count = r.U64() }

// XattrListResp is the names of an inode's extended attributes, in
// byte order.
type XattrListResp struct{ Names []string }

func (m *XattrListResp) Append(b []byte) []byte {
	b = AppendU32(b, uint32(len(m.Names)))
	for _, n := range m.Names {
		b = AppendString(b, n)
	}
	return b
}

func (m *XattrListResp) Decode(r *Reader) {
	m.Names = make([]string, r.Count(4))
	for i := range m.Names {
		m.Names[i] = r.String()
	}
}

// The POSIX ACLs' attribute names.
const (
	ACLAccess  = "system.posix_acl_access"
	ACLDefault = "system.posix_acl_default"
)

// CheckXattrName refuses a name no inode can have: empty or too long,
// or, as on ext4, outside the user, trusted and security namespaces and
// the POSIX ACLs. The metaserver checks every name it is given; a mount
// that answers a question itself checks first, so that its answer is
// the metaserver's.
func CheckXattrName(name string) error {
	switch {
	case name == "":
		return Errorf(CodeRange, "empty extended attribute name")
	case len(name) > MaxXattrName:
		return Errorf(CodeRange, "extended attribute name of %d bytes (at most %d)", len(name), MaxXattrName)
	case name == ACLAccess || name == ACLDefault:
		return nil
	}
	for _, ns := range []string{"user.", "trusted.", "security."} {
		if name == ns {
			return Errorf(CodeInvalid, "extended attribute name %q without a name after the namespace", name)
		}
		if strings.HasPrefix(name, ns) {
			return nil
		}
	}
	return Errorf(CodeNotSup, "extended attribute %q: not in the user, trusted or security namespace", name)
}
