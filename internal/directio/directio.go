// Package directio writes new files, and reads whole ones, with O_DIRECT
// where the file system allows it, and buffered where it does not (tmpfs).
//
// A file written once and not read back soon (a chunkserver's block file,
// fsynced before it is acknowledged; a client's disk cache entry) gains
// nothing from a trip through the page cache: a buffered write copies the
// bytes there only for writeback to send them to the disk, and costs the
// writer's CPU and the kernel's. Direct I/O sends them from our buffer.
// Likewise a file read whole into memory that keeps it (a disk cache
// entry, read into the client's memory cache): a buffered read copies
// it through the page cache, which then holds a second copy.
// Direct I/O wants an aligned buffer, length and offset, so a file's
// bytes are copied into an aligned buffer padded to whole Align units,
// written at offset 0, and the file cut back to its length; a read
// covers the whole units around the bytes asked for.
package directio

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"unsafe"
)

// Align is the alignment direct I/O needs: the page size, which covers
// every logical block size of the disks we run on.
const Align = 4096

// Create creates path, which must not exist, for writing, with direct I/O
// where the file system supports it, and reports which.
func Create(path string) (f *os.File, direct bool, err error) {
	const flags = os.O_WRONLY | os.O_CREATE | os.O_EXCL
	f, err = os.OpenFile(path, flags|syscall.O_DIRECT, 0o600)
	if errors.Is(err, syscall.EINVAL) {
		f, err = os.OpenFile(path, flags, 0o600)
		return f, false, err
	}
	return f, err == nil, err
}

// CreateTemp creates a new file in dir named prefix followed by 16 random
// hex digits, as Create does; f.Name() is its path.
func CreateTemp(dir, prefix string) (f *os.File, direct bool, err error) {
	var rnd [8]byte
	rand.Read(rnd[:])
	return Create(filepath.Join(dir, prefix+hex.EncodeToString(rnd[:])))
}

// Writer writes whole files of up to a fixed size through a pool of
// aligned buffers.
type Writer struct {
	max  int
	pool sync.Pool
}

// NewWriter returns a Writer whose pool holds buffers for files of up to
// max bytes (a bigger one gets a buffer of its own).
func NewWriter(max int) *Writer {
	w := &Writer{max: roundUp(max)}
	w.pool.New = func() any {
		buf := alignedBuffer(w.max)
		return &buf
	}
	return w
}

// Write writes the concatenation of parts as the whole of the new file f,
// which Create opened (direct says how). It does not sync.
func (w *Writer) Write(f *os.File, direct bool, parts ...[]byte) error {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	if !direct {
		for _, p := range parts {
			if _, err := f.Write(p); err != nil {
				return err
			}
		}
		return nil
	}
	var padded []byte
	if n <= w.max {
		bufp := w.pool.Get().(*[]byte)
		defer w.pool.Put(bufp)
		padded = (*bufp)[:roundUp(n)]
	} else {
		padded = alignedBuffer(roundUp(n))
	}
	at := 0
	for _, p := range parts {
		at += copy(padded[at:], p)
	}
	clear(padded[at:])
	if _, err := f.Write(padded); err != nil {
		return err
	}
	return f.Truncate(int64(n))
}

// Open opens path for reading, with direct I/O where the file system
// supports it, and reports which.
func Open(path string) (f *os.File, direct bool, err error) {
	f, err = os.OpenFile(path, os.O_RDONLY|syscall.O_DIRECT, 0)
	if errors.Is(err, syscall.EINVAL) {
		f, err = os.Open(path)
		return f, false, err
	}
	return f, err == nil, err
}

// ReadAt returns the n bytes at off in f, which Open opened (direct says
// how). A direct read covers the whole Align units around them, into a
// buffer of their own that the returned slice keeps alive.
func ReadAt(f *os.File, direct bool, off int64, n int) ([]byte, error) {
	if !direct {
		buf := make([]byte, n)
		_, err := f.ReadAt(buf, off)
		return buf, err
	}
	start := off / Align * Align
	skip := int(off - start)
	buf := alignedBuffer(roundUp(skip + n))
	// The last unit may run past the end of the file: the read is short
	// there, and only the bytes asked for must have been read.
	got, err := f.ReadAt(buf, start)
	if got >= skip+n {
		err = nil
	} else if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return buf[skip : skip+n : skip+n], err
}

// alignedBuffer returns n bytes that start at a multiple of Align.
func alignedBuffer(n int) []byte {
	buf := make([]byte, n+Align)
	skip := (Align - int(uintptr(unsafe.Pointer(&buf[0]))%Align)) % Align
	return buf[skip : skip+n : skip+n]
}

func roundUp(n int) int { return (n + Align - 1) / Align * Align }
