package wire

//go:generate go run golang.org/x/tools/cmd/stringer@v0.52.0 -type=Method

// Method names a request. The request and response types of each method
// are listed beside it.
type Method uint16

const (
	_ Method = iota

	// Metaserver methods.
	MLookup    // LookupReq → AttrResp
	MGetAttr   // InoReq → AttrResp
	MSetAttr   // SetAttrReq → AttrResp
	MMake      // MakeReq → ChangeResp
	MLink      // LinkReq → ChangeResp
	MRemove    // RemoveReq → ChangeResp: the inode that lost a name (Ino 0 for a directory not in Open)
	MRename    // RenameReq → ChangeResp: the inode the rename replaced, if any (else Ino 0)
	MReadDir   // ReadDirReq → ReadDirResp
	MReadlink  // InoReq → ReadlinkResp
	MCommit    // CommitReq → AttrResp
	MExtents   // InoReq → ExtentsResp
	MStatFS    // Empty → StatFSResp
	MMap       // Empty → MapResp
	MHeartbeat // HeartbeatReq → MapResp
	MSync      // Empty → Empty: every namespace change so far is durable
	MPurge     // InoReq → Empty: drop an inode kept open after its last unlink
	MSession   // SessionReq → SessionResp: open, renew or end a client session
	MGetLock   // LockReq → LockResp
	MSetLock   // LockReq → LockResp
	MFallocate // FallocateReq → AttrResp

	// Extended attributes (metaserver).
	MGetXattr    // XattrReq → XattrResp
	MListXattr   // InoReq → XattrListResp
	MSetXattr    // SetXattrReq → AttrResp
	MRemoveXattr // XattrReq → AttrResp
	MACLCount    // Empty → CountResp: how many POSIX ACLs the namespace holds
	MReportBad   // BadReplicaReq → Empty: a replica failed verification
	MDrain       // DrainReq → Empty: move every block off a chunkserver
	MTasks       // Empty → TasksResp: background work, for status
	MFsck        // FsckReq → FsckResp: check the namespace and every block's copies
	MOnce        // OnceReq → the wrapped method's response, executed at most once per ID
	MSettings    // Empty → SettingsResp
	MAccessed    // InoReq → Empty: a mount read the file (relatime)

	// Chunkserver methods.
	CPut      // PutReq → Empty
	CGet      // BlockReq → GetResp
	CHas      // BlockReq → HasResp
	CGetRange // GetRangeReq → GetResp: a verified slice of a block

	// Chunkserver methods for background work, called by the metaserver.
	CList   // ListReq → ListResp
	CDelete // DeleteReq → DeleteResp
	CFetch  // FetchReq → FetchResp
	CScrub  // ScrubReq → ScrubResp
	CTouch  // TouchReq → TouchResp: called by writers
	CVerify // VerifyReq → VerifyResp

	// Added later, at the end so that no method's number changes: a peer
	// that predates one answers it as an unknown method.
	MXattrsInUse // Empty → CountResp: 0 if the namespace holds no extended attribute at all
	MBatch       // BatchReq → BatchResp: several read-only calls in one round trip
	MTmpfile     // TmpfileReq → AttrResp: a file with no name (open's O_TMPFILE)
	MCancelLock  // LockReq → Empty: the waiting MSetLock of Session and Call answers now, with the lock or a conflict

	methodEnd
)

// Valid reports whether m is a method this version knows.
func (m Method) Valid() bool { return m > 0 && m < methodEnd }
