package client_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-fs/cairn/internal/testcluster"
)

// TestCloseEndsBackgroundWork: Close cancels what the client runs in the
// background (blocks fetched ahead, kernel cache fills, uploads) and
// returns only once it has ended, so that none of it outlives the client.
func TestCloseEndsBackgroundWork(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{NoMount: true})
	started := make(chan struct{})
	var ended atomic.Bool
	var why error
	c.Client.GoBackground(func(ctx context.Context) {
		close(started)
		<-ctx.Done()
		why = ctx.Err()
		time.Sleep(50 * time.Millisecond) // still winding down when Close waits
		ended.Store(true)
	})
	<-started
	c.Stop()
	if !ended.Load() {
		t.Fatal("Close returned before the background work ended")
	}
	if !errors.Is(why, context.Canceled) {
		t.Fatalf("the background work ended with %v, want it canceled by Close", why)
	}
}
