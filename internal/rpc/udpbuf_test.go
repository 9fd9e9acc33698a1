package rpc

import (
	"strings"
	"testing"
)

// TestUDPBuffers: this process (root in CI) gets the buffers it asks for,
// and a capped size is reported with the sysctl that lifts the cap.
func TestUDPBuffers(t *testing.T) {
	rcv, snd, err := probeUDPBuffers()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("UDP socket buffers: receive %d KiB, send %d KiB", rcv>>10, snd>>10)
	if rcv <= 0 || snd <= 0 {
		t.Fatalf("buffer sizes %d, %d", rcv, snd)
	}
	if msg := bufferWarning(udpBuffer, udpBuffer); msg != "" {
		t.Fatalf("warning for sufficient buffers: %s", msg)
	}
	msg := bufferWarning(416<<10, udpBuffer)
	for _, want := range []string{"416 KiB receive", "sysctl -w net.core.rmem_max=7340032 net.core.wmem_max=7340032"} {
		if !strings.Contains(msg, want) {
			t.Errorf("warning %q lacks %q", msg, want)
		}
	}
}
