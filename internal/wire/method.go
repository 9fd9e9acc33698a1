package wire

// Method names a request. The request and response types of each method
// are listed beside it.
type Method uint16

const (
	_ Method = iota

	// Metaserver methods.
	MLookup    // LookupReq → AttrResp
	MGetAttr   // InoReq → AttrResp
	MSetAttr   // SetAttrReq → AttrResp
	MMake      // MakeReq → AttrResp
	MLink      // LinkReq → AttrResp
	MRemove    // RemoveReq → AttrResp: the inode that lost a name (Ino 0 for a directory)
	MRename    // RenameReq → AttrResp: the inode the rename replaced, if any (else Ino 0)
	MReadDir   // ReadDirReq → ReadDirResp
	MReadlink  // InoReq → ReadlinkResp
	MCommit    // CommitReq → AttrResp
	MExtents   // InoReq → ExtentsResp
	MStatFS    // Empty → StatFSResp
	MMap       // Empty → MapResp
	MHeartbeat // HeartbeatReq → MapResp
	MSync      // Empty → Empty: every namespace change so far is durable
	MPurge     // InoReq → Empty: drop an inode kept open after its last unlink

	// Chunkserver methods.
	CPut      // PutReq → Empty
	CGet      // BlockReq → GetResp
	CHas      // BlockReq → HasResp
	CGetRange // GetRangeReq → GetResp: a verified slice of a block

	methodEnd
)

// Valid reports whether m is a method this version knows.
func (m Method) Valid() bool { return m > 0 && m < methodEnd }
