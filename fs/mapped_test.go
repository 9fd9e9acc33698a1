package fs_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// Tests write through shared mappings of files on a mount in a child
// process (mapWrite), never in the test process, which runs the mount's
// FUSE server. A process that maps a mount's file can deadlock with its
// own server: munmap of a dirty mapping holds the address space's lock
// while the kernel writes the pages back through the server, and the
// server's threads need that lock for their next page fault or heap
// growth (seen in a model run: munmap in fuse_vma_close, the Go runtime
// in mmap, a server thread in a page fault). A program on a real mount
// is not in the server's process, so nothing of this applies to it.

// patch is bytes to write at an offset of a mapping.
type patch struct {
	off  int
	data []byte
}

// mapWriteEnv makes the test binary a mapWrite child (TestMain); its
// value is "mapOff mapLen msync user".
const mapWriteEnv = "CAIRN_TEST_MAPWRITE"

func TestMain(m *testing.M) {
	if arg := os.Getenv(mapWriteEnv); arg != "" {
		os.Exit(mapWriteChild(arg))
	}
	os.Exit(m.Run())
}

// mapWrite maps [mapOff, mapOff+mapLen) of fd shared and writable in a
// child process run as model user user (0: root), writes each patch (at
// offsets in the mapping) through it, msyncs if asked, and unmaps. It
// returns the first system call's error, a syscall.Errno; anything else
// is the child failing, and panics.
func mapWrite(fd int, mapOff int64, mapLen int, patches []patch, msync bool, user int) error {
	var in bytes.Buffer
	for _, p := range patches {
		in.Write(binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, uint64(p.off)), uint64(len(p.data))))
		in.Write(p.data)
	}
	dup, err := unix.Dup(fd) // the caller keeps fd
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(dup), "mapped")
	defer f.Close()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d %d %t %d", mapWriteEnv, mapOff, mapLen, msync, user))
	cmd.ExtraFiles = []*os.File{f} // fd 3
	cmd.Stdin = &in
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	// Started from another goroutine, so not from this thread, which
	// may run as a model user who cannot run the test binary; the child
	// becomes that user itself.
	done := make(chan error)
	go func() { done <- cmd.Run() }()
	if err := <-done; err != nil {
		panic(fmt.Sprintf("mapWrite child: %v: %s", err, errOut.String()))
	}
	switch s := strings.TrimSpace(out.String()); {
	case s == "ok":
		return nil
	case strings.HasPrefix(s, "errno "):
		n, err := strconv.Atoi(strings.TrimPrefix(s, "errno "))
		if err == nil && n > 0 {
			return syscall.Errno(n)
		}
	}
	panic(fmt.Sprintf("mapWrite child said %q: %s", out.String(), errOut.String()))
}

// mapWriteChild is the child's side of mapWrite: it prints "ok" or
// "errno N" and returns the exit status.
func mapWriteChild(arg string) int {
	var mapOff int64
	var mapLen, user int
	var msync bool
	if _, err := fmt.Sscanf(arg, "%d %d %t %d", &mapOff, &mapLen, &msync, &user); err != nil {
		fmt.Fprintf(os.Stderr, "%s=%q: %v\n", mapWriteEnv, arg, err)
		return 2
	}
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if user != 0 {
		asModelUser(user)
	}
	err = mapWriteHere(3, mapOff, mapLen, in, msync)
	if e, ok := err.(syscall.Errno); ok {
		fmt.Printf("errno %d\n", int(e))
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fmt.Println("ok")
	return 0
}

func mapWriteHere(fd int, mapOff int64, mapLen int, in []byte, msync bool) error {
	m, err := unix.Mmap(fd, mapOff, mapLen, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return err
	}
	for len(in) > 0 {
		if len(in) < 16 {
			return fmt.Errorf("patch header of %d bytes", len(in))
		}
		off, n := binary.LittleEndian.Uint64(in), binary.LittleEndian.Uint64(in[8:])
		in = in[16:]
		if n > uint64(len(in)) || off+n > uint64(len(m)) {
			return fmt.Errorf("patch of %d bytes at %d: outside the mapping or the input", n, off)
		}
		if err := writeMapped(m[off:], in[:n]); err != nil {
			unix.Munmap(m)
			return err
		}
		in = in[n:]
	}
	if msync {
		if err := unix.Msync(m, unix.MS_SYNC); err != nil {
			unix.Munmap(m)
			return err
		}
	}
	return unix.Munmap(m)
}

// writeMapped copies data into m, a shared mapping, from inside a
// system call (a pread from a memfd) rather than with copy, so that a
// page the file system fails to provide is an error (EFAULT), not a
// SIGBUS that kills the child.
func writeMapped(m, data []byte) error {
	fd, err := unix.MemfdCreate("cairn-test-mapped", unix.MFD_CLOEXEC)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	for done := 0; done < len(data); {
		n, err := unix.Write(fd, data[done:])
		if err != nil {
			return err
		}
		done += n
	}
	for done := 0; done < len(data); {
		n, err := unix.Pread(fd, m[done:len(data)], int64(done))
		if err != nil {
			return err
		}
		if n == 0 {
			return unix.EIO // the memfd holds len(data) bytes: cannot happen
		}
		done += n
	}
	return nil
}
