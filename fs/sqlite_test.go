package fs_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-fs/cairn/internal/testcluster"
)

// sqlite3 runs the sqlite3 CLI (Debian package sqlite3) on db with script
// on stdin, stopping at the first error.
func sqlite3(t *testing.T, db, script string) (string, error) {
	t.Helper()
	bin, err := exec.LookPath("sqlite3")
	if err != nil {
		t.Fatal("sqlite3 not found: apt-get install -y sqlite3")
	}
	cmd := exec.Command(bin, "-bail", db)
	cmd.Stdin = strings.NewReader(script)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("sqlite3 %s: %v: %s", db, err, errb.String())
	}
	return out.String(), nil
}

// sqliteBusy is the writers' busy timeout (.timeout, in ms). SQLite's
// busy handler polls, sleeping up to 100 ms between tries, while the
// writers holding the lock take it again at once for their next
// transaction: on a loaded machine (every lock is a metaserver round
// trip, every commit two fsyncs) one writer can lose for as long as the
// others take to finish, over a minute. A lock that is never released
// still fails the test, after this long.
const sqliteBusy = ".timeout 300000\n"

// sqlite3All runs scripts[i] on dbs[i], all at once, and fails the test
// if any of them fails.
func sqlite3All(t *testing.T, dbs, scripts []string) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(scripts))
	for i := range scripts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := sqlite3(t, dbs[i], scripts[i]); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestSQLiteConcurrentWriters: several sqlite3 processes write one
// database at once, in WAL and in rollback-journal mode; the database
// passes integrity_check, holds every committed row, and still does
// after the cluster restarts.
func TestSQLiteConcurrentWriters(t *testing.T) {
	writers, txns := 4, 40
	if n, err := strconv.Atoi(os.Getenv("CAIRN_SQLITE_TXNS")); err == nil && n > 0 {
		writers, txns = 8, n // soak: CAIRN_SQLITE_TXNS=500
	}
	c := testcluster.Start(t, testcluster.Options{})
	modes := []string{"wal", "delete"}
	for _, mode := range modes {
		db := c.Path(mode + ".db")
		setup := fmt.Sprintf(`PRAGMA journal_mode=%s;
CREATE TABLE rows(id INTEGER PRIMARY KEY, writer INT, n INT, payload BLOB);
CREATE TABLE counter(v INT); INSERT INTO counter VALUES(0);
`, mode)
		if out, err := sqlite3(t, db, setup); err != nil {
			t.Fatal(err)
		} else if !strings.Contains(out, mode) {
			t.Fatalf("journal_mode answer %q, want %s", out, mode)
		}
		start := time.Now()
		scripts := make([]string, writers)
		for w := range writers {
			var script strings.Builder
			script.WriteString(sqliteBusy)
			for i := range txns {
				fmt.Fprintf(&script, "BEGIN IMMEDIATE; INSERT INTO rows(writer, n, payload) VALUES(%d, %d, randomblob(%d)); UPDATE counter SET v = v + 1; COMMIT;\n", w, i, 100+(w*37+i*101)%3000)
				if i%10 == 9 {
					script.WriteString("SELECT count(*) FROM rows;\n") // readers among the writers
				}
			}
			scripts[w] = script.String()
		}
		sqlite3All(t, slices.Repeat([]string{db}, writers), scripts)
		t.Logf("%s: %d writers × %d transactions in %v", mode, writers, txns, time.Since(start))
		check := func(when string) {
			t.Helper()
			out, err := sqlite3(t, db, "PRAGMA integrity_check;\nSELECT count(*), count(DISTINCT writer*1000+n) FROM rows;\nSELECT v FROM counter;\n")
			if err != nil {
				t.Fatalf("%s %s: %v", mode, when, err)
			}
			want := fmt.Sprintf("ok\n%d|%d\n%d\n", writers*txns, writers*txns, writers*txns)
			if out != want {
				t.Fatalf("%s %s: got %q, want %q", mode, when, out, want)
			}
		}
		check("after the writers")
		if mode == "wal" {
			// Fold the WAL into the database, so the restart below
			// checks the main file too.
			if _, err := sqlite3(t, db, "PRAGMA wal_checkpoint(TRUNCATE);\n"); err != nil {
				t.Fatal(err)
			}
		}
	}
	c.Restart(t)
	for _, mode := range modes {
		out, err := sqlite3(t, c.Path(mode+".db"), "PRAGMA integrity_check;\nSELECT count(*) FROM rows;\n")
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("ok\n%d\n", writers*txns); out != want {
			t.Fatalf("%s after restart: got %q, want %q", mode, out, want)
		}
	}
}

// TestSQLiteTwoMounts: sqlite3 processes on two mounts of one cluster
// write one database in rollback-journal mode. Locks order them across
// the mounts, and a lock drops data the other mount changed, so no
// transaction is lost and the database stays sound. (WAL mode needs its
// -shm index shared through memory, which two machines cannot do: as on
// NFS, it is for one mount only.)
func TestSQLiteTwoMounts(t *testing.T) {
	perMount, txns := 2, 30
	if n, err := strconv.Atoi(os.Getenv("CAIRN_SQLITE_TXNS")); err == nil && n > 0 {
		perMount, txns = 3, n
	}
	c := testcluster.Start(t, testcluster.Options{})
	_, mnt2 := c.AddMount(t)
	if _, err := sqlite3(t, c.Path("shared.db"), "PRAGMA journal_mode=delete;\nCREATE TABLE rows(id INTEGER PRIMARY KEY, writer INT, n INT, payload BLOB);\n"); err != nil {
		t.Fatal(err)
	}
	dbs, scripts := make([]string, 2*perMount), make([]string, 2*perMount)
	for w := range 2 * perMount {
		dbs[w] = c.Path("shared.db")
		if w%2 == 1 {
			dbs[w] = filepath.Join(mnt2, "shared.db")
		}
		var script strings.Builder
		script.WriteString(sqliteBusy)
		for i := range txns {
			fmt.Fprintf(&script, "BEGIN IMMEDIATE; INSERT INTO rows(writer, n, payload) VALUES(%d, %d, randomblob(%d)); COMMIT;\n", w, i, 200+(w*31+i*57)%5000)
		}
		scripts[w] = script.String()
	}
	sqlite3All(t, dbs, scripts)
	want := fmt.Sprintf("ok\n%d|%d\n", 2*perMount*txns, 2*perMount*txns)
	for _, db := range []string{c.Path("shared.db"), filepath.Join(mnt2, "shared.db")} {
		out, err := sqlite3(t, db, "PRAGMA integrity_check;\nSELECT count(*), count(DISTINCT writer*1000+n) FROM rows;\n")
		if err != nil {
			t.Fatal(err)
		}
		if out != want {
			t.Fatalf("%s: got %q, want %q", db, out, want)
		}
	}
}
