// Command fetch downloads, verifies and caches arbench's built-in datasets.
//
//	go run ./datasets/cmd/fetch [-dir DIR] [NAME...]
//
// With no names it fetches every built-in dataset. DIR defaults to
// $ARBENCH_DATA, else ./data. It is what `make datasets` runs; the same
// operation is available as `arbench fetch`.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"arbench/datasets"
)

func main() {
	dir := flag.String("dir", datasets.Dir(), "dataset cache directory")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: fetch [-dir DIR] [NAME...]\n\nbuilt-in datasets:\n")
		for _, n := range datasets.Names() {
			fmt.Fprintf(flag.CommandLine.Output(), "  %-10s %s\n", n, datasets.Describe(n))
		}
		fmt.Fprintf(flag.CommandLine.Output(), "\nflags:\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	names := flag.Args()
	if len(names) == 0 {
		names = datasets.Names()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var failed []string
	for _, n := range names {
		if err := datasets.Fetch(ctx, n, *dir, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, err)
			failed = append(failed, n)
		}
	}
	if len(failed) > 0 {
		fmt.Fprintf(os.Stderr, "fetch: failed: %s\n", strings.Join(failed, ", "))
		os.Exit(1)
	}
}
