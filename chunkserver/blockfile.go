package chunkserver

import (
	"bytes"
	"fmt"
	"os"

	"github.com/cairn-fs/cairn/internal/block"
	"github.com/cairn-fs/cairn/internal/wire"
	"github.com/klauspost/compress/s2"
)

// A block file holds a block as stored on disk. A block that s2 shrinks
// by at least an eighth (text, logs, source trees, sparse data) is stored
// compressed, behind a header; any other block is stored as its raw
// bytes, so incompressible data costs one quick estimate on a sample and
// nothing on reads. The block's ID is always of its raw bytes: dedup,
// placement and every verification are about content, not encoding.
//
// A header is blockMagic and one byte of format. A raw block that happens
// to begin with blockMagic is stored behind a header too, so a file that
// begins with it is always read as framed.
var blockMagic = [8]byte{0xca, 'i', 'r', 'n', 'b', 'l', 'k', 0}

const (
	formatRaw = 0 // the block's bytes follow the header as they are
	formatS2  = 1 // the block's bytes follow s2-compressed
)

const blockHeader = len(blockMagic) + 1

var _ [wire.MaxStoredOverhead - blockHeader]struct{} // the header fits what listings promise

// sampleSize is how much of a block the compressibility estimate looks at.
const sampleSize = 64 << 10

// shrinks reports whether compressing n bytes into m saves an eighth.
func shrinks(n, m int) bool { return m > 0 && m <= n-n/8 }

// encodeBlockFile returns what to write to disk for block data.
func encodeBlockFile(data []byte) []byte {
	sample := data[:min(len(data), sampleSize)]
	if est := s2.EstimateBlockSize(sample); shrinks(len(sample), est) {
		file := make([]byte, blockHeader+s2.MaxEncodedLen(len(data)))
		enc := s2.Encode(file[blockHeader:], data)
		if shrinks(len(data), blockHeader+len(enc)) {
			return withHeader(file[:blockHeader+len(enc)], formatS2)
		}
	}
	if bytes.HasPrefix(data, blockMagic[:]) {
		file := make([]byte, blockHeader+len(data))
		copy(file[blockHeader:], data)
		return withHeader(file, formatRaw)
	}
	return data
}

// withHeader writes the header for format into file's first bytes.
func withHeader(file []byte, format byte) []byte {
	copy(file, blockMagic[:])
	file[len(blockMagic)] = format
	return file
}

// decodeBlockFile returns the block stored in file. The result is not
// verified against the block's ID: callers do that.
func decodeBlockFile(file []byte) ([]byte, error) {
	if !bytes.HasPrefix(file, blockMagic[:]) {
		return file, nil
	}
	if len(file) < blockHeader {
		return nil, fmt.Errorf("block file of %d bytes is shorter than its header", len(file))
	}
	body := file[blockHeader:]
	switch file[len(blockMagic)] {
	case formatRaw:
		return body, nil
	case formatS2:
		n, err := s2.DecodedLen(body)
		if err != nil {
			return nil, fmt.Errorf("compressed block file: %w", err)
		}
		if n > block.MaxSize {
			return nil, fmt.Errorf("compressed block file decodes to %d bytes, more than a block", n)
		}
		return s2.Decode(make([]byte, n), body)
	default:
		return nil, fmt.Errorf("block file of unknown format %d", file[len(blockMagic)])
	}
}

// rawOffset says where a block's bytes start in a file that begins with
// head (at least blockHeader bytes of it, or all of a shorter file), or
// -1 if the file is compressed and must be decoded whole.
func rawOffset(head []byte) int {
	if !bytes.HasPrefix(head, blockMagic[:]) {
		return 0
	}
	if len(head) >= blockHeader && head[len(blockMagic)] == formatRaw {
		return blockHeader
	}
	return -1
}

// readBlockFile reads and decodes the block file at path.
func readBlockFile(path string) ([]byte, error) {
	file, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	data, err := decodeBlockFile(file)
	if err != nil {
		return nil, &undecodableError{path, err}
	}
	return data, nil
}

// undecodableError is a block file whose header or compressed body is
// damaged: a corrupt copy, like one that fails its hash.
type undecodableError struct {
	path string
	err  error
}

func (e *undecodableError) Error() string { return e.path + ": " + e.err.Error() }
func (e *undecodableError) Unwrap() error { return e.err }
