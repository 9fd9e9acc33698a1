package fs_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/cairn-fs/cairn/internal/testcluster"
)

func TestSmokeWriteReadRestart(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	data := bytes.Repeat([]byte("cairn"), 2_000_000) // spans several blocks
	if err := os.WriteFile(c.Path("f"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(c.Path("f"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back: err=%v equal=%v", err, bytes.Equal(got, data))
	}
	c.Restart(t)
	got, err = os.ReadFile(c.Path("f"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("after restart: err=%v equal=%v", err, bytes.Equal(got, data))
	}
}
