package rpc

import (
	"fmt"
	"log/slog"
	"net"
	"sync"
	"syscall"
)

// udpBuffer is the UDP socket buffer quic-go asks the kernel for (it
// compares what getsockopt reports, twice the size granted, against it).
// With less, a burst of packets overflows the socket while quic-go's
// goroutine is off the CPU, and each drop halves the sender's window.
const udpBuffer = 7 << 20

var checkBuffersOnce sync.Once

// CheckUDPBuffers warns once per process, at start-up, when the kernel
// caps UDP socket buffers below what bulk transfer needs, and says
// which sysctl lifts the cap. As root the cap is overridden (quic-go
// uses SO_RCVBUFFORCE), so the warning is for unprivileged processes.
func CheckUDPBuffers(log *slog.Logger) {
	checkBuffersOnce.Do(func() {
		rcv, snd, err := probeUDPBuffers()
		if err != nil {
			log.Warn("cannot check UDP socket buffer sizes", "err", err)
			return
		}
		if msg := bufferWarning(rcv, snd); msg != "" {
			log.Warn(msg)
		}
	})
}

// bufferWarning returns the start-up warning for the buffer sizes a
// socket got (as getsockopt reports them), or "" when they suffice.
func bufferWarning(rcv, snd int) string {
	if rcv >= udpBuffer && snd >= udpBuffer {
		return ""
	}
	return fmt.Sprintf("UDP socket buffers are capped at %d KiB receive, %d KiB send (want %d KiB): "+
		"block transfers will lose packets and slow down; as root run "+
		"sysctl -w net.core.rmem_max=%d net.core.wmem_max=%d "+
		"(and put it in /etc/sysctl.d/ to keep it)", rcv>>10, snd>>10, udpBuffer>>10, udpBuffer, udpBuffer)
}

// probeUDPBuffers asks for udpBuffer on a scratch socket the way quic-go
// does for its own and returns what the kernel granted.
func probeUDPBuffers() (rcv, snd int, err error) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	c.SetReadBuffer(udpBuffer)
	c.SetWriteBuffer(udpBuffer)
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, 0, err
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		get := func(opt int) int {
			n, err := syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, opt)
			if err != nil && serr == nil {
				serr = err
			}
			return n
		}
		if get(syscall.SO_RCVBUF) < udpBuffer {
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, udpBuffer)
		}
		if get(syscall.SO_SNDBUF) < udpBuffer {
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUFFORCE, udpBuffer)
		}
		rcv, snd = get(syscall.SO_RCVBUF), get(syscall.SO_SNDBUF)
	})
	if err == nil {
		err = serr
	}
	return rcv, snd, err
}
