package fs_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-fs/cairn/internal/testcluster"
	"golang.org/x/sys/unix"
)

// Which timestamps an operation changes, on cairn and on the local disk:
// each step runs, then reports for each watched path which of atime,
// mtime and ctime moved (and the times themselves where they were set
// explicitly).

type timeStep struct {
	name  string
	watch []string // paths whose times are reported, relative to the directory
	do    func(p func(string) string) error
}

func statTimes(path string) (a, m, c unix.Timespec, err error) {
	var st unix.Stat_t
	err = unix.Lstat(path, &st)
	return st.Atim, st.Mtim, st.Ctim, err
}

func runTimeSteps(dir string, steps []timeStep) []string {
	p := func(rel string) string { return filepath.Join(dir, rel) }
	var out []string
	for _, s := range steps {
		type times struct{ a, m, c unix.Timespec }
		before := map[string]times{}
		for _, w := range s.watch {
			a, m, c, _ := statTimes(p(w))
			before[w] = times{a, m, c}
		}
		// Linux's clock for file times ticks in jiffies: step past one.
		time.Sleep(15 * time.Millisecond)
		err := s.do(p)
		line := fmt.Sprintf("%s: %v;", s.name, modelErrStr(modelErrno(err)))
		for i, w := range s.watch {
			a, m, c, err := statTimes(p(w))
			if err != nil {
				line += fmt.Sprintf(" %s gone;", w)
				continue
			}
			b := before[w]
			var moved []string
			for _, x := range []struct {
				n        string
				was, now unix.Timespec
			}{{"atime", b.a, a}, {"mtime", b.m, m}, {"ctime", b.c, c}} {
				if x.now != x.was {
					moved = append(moved, x.n)
				}
			}
			line += fmt.Sprintf(" %s [%s]", w, strings.Join(moved, " "))
			if i == 0 && strings.HasPrefix(s.name, "utimens") && !strings.Contains(s.name, "now") {
				line += fmt.Sprintf(" a=%d.%09d m=%d.%09d", a.Sec, a.Nsec, m.Sec, m.Nsec)
			}
			line += ";"
		}
		out = append(out, line)
	}
	return out
}

func TestTimestampsMatchLocal(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	wr := func(rel string, data string) func(p func(string) string) error {
		return func(p func(string) string) error {
			f, err := os.OpenFile(p(rel), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				return err
			}
			_, err = f.WriteString(data)
			return errorsJoin(err, f.Close())
		}
	}
	rd := func(rel string) func(p func(string) string) error {
		return func(p func(string) string) error { _, err := os.ReadFile(p(rel)); return err }
	}
	ts := func(sec, nsec int64) unix.Timespec { return unix.Timespec{Sec: sec, Nsec: nsec} }
	utimens := func(rel string, a, m unix.Timespec) func(p func(string) string) error {
		return func(p func(string) string) error {
			return unix.UtimesNanoAt(unix.AT_FDCWD, p(rel), []unix.Timespec{a, m}, unix.AT_SYMLINK_NOFOLLOW)
		}
	}
	now, omit := ts(0, unix.UTIME_NOW), ts(0, unix.UTIME_OMIT)
	steps := []timeStep{
		{"create", []string{"."}, func(p func(string) string) error { return os.WriteFile(p("f"), []byte("data"), 0o644) }},
		{"mkdir", []string{"."}, func(p func(string) string) error { return os.Mkdir(p("d"), 0o755) }},
		{"write", []string{"f", "."}, wr("f", "more")},
		{"empty write", []string{"f"}, wr("f", "")},
		{"chmod", []string{"f", "."}, func(p func(string) string) error { return os.Chmod(p("f"), 0o600) }},
		{"chown", []string{"f"}, func(p func(string) string) error { return os.Chown(p("f"), 7, 8) }},
		{"chown to the same", []string{"f"}, func(p func(string) string) error { return os.Chown(p("f"), 7, 8) }},
		{"link", []string{"f", "d"}, func(p func(string) string) error { return os.Link(p("f"), p("d/g")) }},
		{"unlink a link", []string{"f", "d"}, func(p func(string) string) error { return os.Remove(p("d/g")) }},
		{"rename", []string{"f", ".", "d"}, func(p func(string) string) error { return os.Rename(p("f"), p("d/f")) }},
		{"rename back", []string{"d/f", ".", "d"}, func(p func(string) string) error { return os.Rename(p("d/f"), p("f")) }},
		{"rename a dir", []string{"d", "."}, func(p func(string) string) error { return os.Rename(p("d"), p("e")) }},
		{"truncate shorter", []string{"f"}, func(p func(string) string) error { return os.Truncate(p("f"), 2) }},
		{"truncate same", []string{"f"}, func(p func(string) string) error { return os.Truncate(p("f"), 2) }},
		{"truncate longer", []string{"f"}, func(p func(string) string) error { return os.Truncate(p("f"), 10) }},
		{"open O_TRUNC", []string{"f"}, func(p func(string) string) error {
			f, err := os.OpenFile(p("f"), os.O_WRONLY|os.O_TRUNC, 0)
			if err == nil {
				err = f.Close()
			}
			return err
		}},
		{"setxattr", []string{"f"}, func(p func(string) string) error { return unix.Setxattr(p("f"), "user.x", []byte("1"), 0) }},
		{"getxattr", []string{"f"}, func(p func(string) string) error { _, err := unix.Getxattr(p("f"), "user.x", nil); return err }},
		{"removexattr", []string{"f"}, func(p func(string) string) error { return unix.Removexattr(p("f"), "user.x") }},
		{"symlink", []string{"."}, func(p func(string) string) error { return os.Symlink("f", p("l")) }},
		{"stat", []string{"f", "."}, func(p func(string) string) error { _, err := os.Stat(p("f")); return err }},
		{"utimens explicit", []string{"f"}, utimens("f", ts(1000, 123456789), ts(2000, 987654321))},
		{"utimens omit atime", []string{"f"}, utimens("f", omit, ts(3000, 5))},
		{"utimens omit both", []string{"f"}, utimens("f", omit, omit)},
		{"utimens now mtime", []string{"f"}, func(p func(string) string) error {
			return unix.UtimesNanoAt(unix.AT_FDCWD, p("f"), []unix.Timespec{omit, now}, 0)
		}},
		{"utimens symlink", []string{"l", "f"}, utimens("l", ts(4000, 1), ts(5000, 2))},
		{"utimens dir", []string{"e"}, utimens("e", ts(6000, 0), ts(7000, 0))},
		{"utimens before 1970", []string{"f"}, utimens("f", ts(-2, 500_000_000), ts(-1, 999_999_999))},
		{"utimens before 1901 (clamped)", []string{"f"}, utimens("f", ts(-6_000_000_000, 5), ts(-1<<31-1, 0))},
		{"utimens in 2200", []string{"f"}, utimens("f", ts(7_258_118_400, 7), ts(7_258_118_400, 999_999_999))},
		{"utimens atime to the past", []string{"f"}, utimens("f", ts(1000, 0), omit)},
		// relatime: only a read moves atime (when it is not after mtime).
		{"open, seek and ftruncate without reading", []string{"f"}, func(p func(string) string) error {
			f, err := os.OpenFile(p("f"), os.O_RDWR, 0)
			if err != nil {
				return err
			}
			err = f.Truncate(20)
			_, serr := unix.Seek(int(f.Fd()), 0, unix.SEEK_HOLE)
			return errorsJoin(errorsJoin(err, serr), f.Close())
		}},
		{"write before read", []string{"f"}, wr("f", "0123456789")},
		{"read", []string{"f"}, rd("f")},
		{"read again", []string{"f"}, rd("f")},
		{"list a dir", []string{"e"}, func(p func(string) string) error { _, err := os.ReadDir(p("e")); return err }},
		{"rmdir", []string{"."}, func(p func(string) string) error { return os.Remove(p("e")) }},
		{"unlink", []string{"."}, func(p func(string) string) error { return os.Remove(p("l")) }},
	}
	cairn, local := c.Path("t"), filepath.Join(t.TempDir(), "t")
	for _, d := range []string{cairn, local} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	got, want := runTimeSteps(cairn, steps), runTimeSteps(local, steps)
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("differs:\ncairn: %s\nlocal: %s", got[i], want[i])
		} else {
			t.Logf("both: %s", got[i])
		}
	}
}

func errorsJoin(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
