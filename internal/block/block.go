// Package block names file content: a block is an immutable byte string of
// at most MaxSize bytes, identified by the BLAKE3-256 hash of its
// uncompressed content. Equal content means equal ID, which is what makes
// deduplication and verify-on-read free.
package block

import (
	"encoding/hex"

	"lukechampine.com/blake3"
)

// MaxSize is the largest block the client cuts and a chunkserver accepts.
// 4 MiB keeps the per-block RPC and metadata cost small against the
// transfer while bounding the memory one in-flight block pins.
const MaxSize = 4 << 20

// ID is the BLAKE3-256 hash of a block's content.
type ID [32]byte

// Sum returns the ID of data.
func Sum(data []byte) ID { return ID(blake3.Sum256(data)) }

// Verify reports whether data hashes to id.
func (id ID) Verify(data []byte) bool { return Sum(data) == id }

func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Short is the first 12 hex digits, enough to tell blocks apart in logs.
func (id ID) Short() string { return hex.EncodeToString(id[:6]) }
