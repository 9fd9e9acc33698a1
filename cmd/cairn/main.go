// Command cairn runs the pieces of a cairn cluster: "up" for a whole
// cluster and its mount in one process, or "meta", "chunk" and "mount"
// as separate processes, and "status" to look at a running cluster.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

type command struct {
	name    string
	args    string // the positional arguments, for usage
	summary string
	flags   func(fs *flag.FlagSet) func(args []string) error
}

var commands = []command{
	{"up", "DATA_DIR MOUNTPOINT", "run a whole cluster (a metaserver, chunkservers) and mount it, in one process", upCmd},
	{"meta", "", "run a metaserver", metaCmd},
	{"chunk", "", "run a chunkserver", chunkCmd},
	{"mount", "MOUNTPOINT", "mount a running cluster", mountCmd},
	{"status", "", "show a running cluster's map and capacity", statusCmd},
	{"fsck", "", "check the namespace and that every block has its copies", fsckCmd},
	{"drain", "CHUNKSERVER", "move every block off a chunkserver (ID or address) so it can leave", drainCmd},
}

func usage(w io.Writer) {
	fmt.Fprintf(w, `cairn is a distributed filesystem you mount as a directory.

Usage:
  cairn COMMAND [flags] [arguments]

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-7s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, `
Run 'cairn COMMAND --help' for a command's flags.

Start here:
  cairn up ./data ./mnt      then use ./mnt; Ctrl-C to stop
`)
}

// usageError is a mistake on the command line: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func main() {
	startPprof()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return 0
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		fs := flag.NewFlagSet("cairn "+c.name, flag.ContinueOnError)
		fs.SetOutput(stderr)
		runFn := c.flags(fs)
		fs.Usage = func() {
			out := fs.Output()
			fmt.Fprintf(out, "Usage: cairn %s [flags] %s\n\n%s.\n\nFlags:\n", c.name, c.args, capitalize(c.summary))
			fs.PrintDefaults()
		}
		if wantsHelp(args[1:]) { // also after the arguments: cairn up d m --help
			fs.SetOutput(stdout)
			fs.Usage()
			return 0
		}
		fs.SetOutput(io.Discard) // a parse error is reported in one line below
		if err := fs.Parse(args[1:]); err != nil {
			fmt.Fprintf(stderr, "cairn %s: %v\nRun 'cairn %s --help' for usage.\n", c.name, err, c.name)
			return 2
		}
		err := runFn(fs.Args())
		var ue usageError
		switch {
		case err == nil:
			return 0
		case errors.As(err, &ue):
			fmt.Fprintf(stderr, "cairn %s: %s\nRun 'cairn %s --help' for usage.\n", c.name, ue.msg, c.name)
			return 2
		default:
			fmt.Fprintf(stderr, "cairn %s: %s\n", c.name, oneLine(err))
			return 1
		}
	}
	fmt.Fprintf(stderr, "cairn: unknown command %q\nRun 'cairn --help' for usage.\n", args[0])
	return 2
}

func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "-h", "-help", "--help":
			return true
		case "--":
			return false
		}
	}
	return false
}

func capitalize(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

// wantArgs checks the number of positional arguments.
func wantArgs(args []string, names ...string) error {
	if len(args) != len(names) {
		return usageError{fmt.Sprintf("want %d argument(s) (%s), got %d", len(names), strings.Join(names, " "), len(args))}
	}
	return nil
}

func newLogger(debug bool) *slog.Logger {
	level := slog.LevelInfo
	if debug {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}
