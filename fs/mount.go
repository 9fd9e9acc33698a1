package fs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cairn-fs/cairn/client"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Options configures a mount. Zero values mean the defaults noted.
type Options struct {
	AttrTimeout time.Duration // kernel entry/attribute cache; 10s if zero (opens revalidate file content and size)
	Debug       bool          // log every FUSE request
	Log         *slog.Logger  // slog.Default() if nil
}

// Mount is a mounted cairn filesystem.
type Mount struct {
	dir    string
	fs     *FS
	server *fuse.Server
	c      *client.Client
}

// ErrMountpointBusy means something is already mounted on the directory.
var ErrMountpointBusy = errors.New("mountpoint already in use")

// New mounts c at dir. As root it mounts directly; otherwise it needs
// fusermount3.
func New(c *client.Client, dir string, opts Options) (*Mount, error) {
	if opts.AttrTimeout <= 0 {
		opts.AttrTimeout = 10 * time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	abs, err := checkMountpoint(dir)
	if err != nil {
		return nil, err
	}
	c.SetEntryTimeout(opts.AttrTimeout)
	fsys := newFS(c, opts.Log, opts.AttrTimeout)
	mo := &fuse.MountOptions{
		FsName:        "cairn",
		Name:          "cairn",
		MaxWrite:      1 << 20,
		MaxReadAhead:  1 << 20,
		MaxBackground: 64,
		DirectMount:   os.Geteuid() == 0,
		AllowOther:    os.Geteuid() == 0,
		Options:       []string{"default_permissions"},
		EnableLocks:   true, // kept in the metaserver: lock.go
		Debug:         opts.Debug,
		// The kernel enforces POSIX ACLs and leaves the umask to us
		// (DONT_MASK), since a default ACL replaces it; SETXATTR_EXT
		// says when setting an ACL must clear the setgid bit.
		EnableAcl:         true,
		ExtraCapabilities: fuse.CAP_DONT_MASK | fuse.CAP_SETXATTR_EXT,
	}
	server, err := fuse.NewServer(fsys, abs, mo)
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", abs, err)
	}
	go server.Serve()
	if err := server.WaitMount(); err != nil {
		server.Unmount()
		return nil, fmt.Errorf("mount %s: %w", abs, err)
	}
	return &Mount{dir: abs, fs: fsys, server: server, c: c}, nil
}

// Dir is the absolute mountpoint.
func (m *Mount) Dir() string { return m.dir }

// Close flushes every open file and unmounts. If the mount is busy (a
// shell inside it, a file still open) it is detached lazily: it leaves
// the namespace at once and the kernel drops it when the last user goes.
func (m *Mount) Close(ctx context.Context) error {
	flushErr := m.c.FlushAll(ctx)
	if err := m.server.Unmount(); err != nil {
		if derr := syscall.Unmount(m.dir, syscall.MNT_DETACH); derr != nil {
			return errors.Join(flushErr, fmt.Errorf("unmount %s: %w", m.dir, err))
		}
	}
	return flushErr
}

// checkMountpoint returns dir's absolute path after checking that it is
// an existing directory with nothing mounted on it.
func checkMountpoint(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	st, err := os.Stat(abs)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("mountpoint %s does not exist", abs)
		}
		// A dead FUSE mount answers ENOTCONN: it is in use, and stale.
		return "", fmt.Errorf("mountpoint %s: %w (unmount it first: umount %s)", abs, err, abs)
	}
	if !st.IsDir() {
		return "", fmt.Errorf("mountpoint %s is not a directory", abs)
	}
	if mounted(abs) {
		return "", fmt.Errorf("%s: %w", abs, ErrMountpointBusy)
	}
	return abs, nil
}

// mounted reports whether something is mounted at dir.
func mounted(dir string) bool {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && unescapeMount(fields[4]) == dir {
			return true
		}
	}
	return false
}

// unescapeMount undoes the octal escapes (\040 for space) of mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &v); err == nil {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Wait blocks until the filesystem is unmounted (by Close, or by
// umount from outside).
func (m *Mount) Wait() { m.server.Wait() }

// DetachIfDead detaches the mount if it is still mounted with no one
// serving it: the kernel ended its connection (an abort through
// /sys/fs/fuse/connections), which leaves a mountpoint that fails every
// access with ENOTCONN until unmounted. It reports whether it did.
func (m *Mount) DetachIfDead() bool {
	var st syscall.Statfs_t // statfs always asks the connection (a stat may be cached)
	if err := syscall.Statfs(m.dir, &st); !errors.Is(err, syscall.ENOTCONN) {
		return false
	}
	return syscall.Unmount(m.dir, syscall.MNT_DETACH) == nil
}

// CheckMountpoint reports, before anything is started, whether dir can be
// mounted on: it exists, is a directory, and nothing is mounted there.
func CheckMountpoint(dir string) error {
	_, err := checkMountpoint(dir)
	return err
}
