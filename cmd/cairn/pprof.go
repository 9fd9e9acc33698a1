package main

import (
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof on the default mux
	"os"
)

// startPprof serves Go's profiler on the loopback address in
// CAIRN_PPROF (e.g. 127.0.0.1:6060), when it is set, so a running daemon
// can be profiled: go tool pprof http://127.0.0.1:6060/debug/pprof/profile
func startPprof() {
	addr := os.Getenv("CAIRN_PPROF")
	if addr == "" {
		return
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cairn: CAIRN_PPROF=%s: %v\n", addr, err)
		return
	}
	fmt.Fprintf(os.Stderr, "cairn: profiler on http://%s/debug/pprof/\n", ln.Addr())
	go http.Serve(ln, nil)
}
