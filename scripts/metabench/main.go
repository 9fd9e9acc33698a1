// Command metabench measures metadata operations in a directory: it
// creates N empty files spread over D subdirectories, stats each, renames
// each within its directory, and unlinks each, timing every phase. It
// prints one JSON object of operations per second, the way
// scripts/bench.sh reads it.
//
//	go run ./scripts/metabench [-files 10000] [-dirs 10] DIR
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

func main() {
	files := flag.Int("files", 10000, "number of empty files")
	dirs := flag.Int("dirs", 10, "number of directories they are spread over")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: metabench [-files N] [-dirs D] DIR")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 || *files < 1 || *dirs < 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(flag.Arg(0), *files, *dirs); err != nil {
		fmt.Fprintln(os.Stderr, "metabench:", err)
		os.Exit(1)
	}
}

func run(dir string, files, dirs int) error {
	root, err := os.MkdirTemp(dir, "metabench.")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	for d := range dirs {
		if err := os.Mkdir(filepath.Join(root, fmt.Sprint(d)), 0o755); err != nil {
			return err
		}
	}
	name := func(i int, suffix string) string {
		return filepath.Join(root, fmt.Sprint(i%dirs), fmt.Sprintf("f%06d%s", i, suffix))
	}
	phases := []struct {
		name string
		op   func(i int) error
	}{
		{"create", func(i int) error {
			f, err := os.OpenFile(name(i, ""), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
			if err != nil {
				return err
			}
			return f.Close()
		}},
		{"stat", func(i int) error { _, err := os.Stat(name(i, "")); return err }},
		{"rename", func(i int) error { return os.Rename(name(i, ""), name(i, ".r")) }},
		{"unlink", func(i int) error { return os.Remove(name(i, ".r")) }},
	}
	result := map[string]float64{}
	for _, p := range phases {
		start := time.Now()
		for i := range files {
			if err := p.op(i); err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
		}
		result[p.name] = float64(files) / time.Since(start).Seconds()
	}
	return json.NewEncoder(os.Stdout).Encode(result)
}
