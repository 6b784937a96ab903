// Command fetch downloads, verifies and caches arbench's built-in datasets.
//
//	go run ./datasets/cmd/fetch [-dir DIR] [NAME...]
//
// With no names it fetches every built-in dataset except the large
// standard corpora (enwik8, text8, wikitext-103-raw), which are fetched
// only when named. DIR defaults to $ARBENCH_DATA, else ./data; the standard
// corpora come from their published URLs, or from $ARBENCH_CORPUS_MIRROR
// when set. An interrupted download of a standard corpus (Ctrl-C, a dropped
// connection) is resumed by running the command again. It is what `make
// datasets` runs; the same operation is available as `arbench fetch`.
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
		out := flag.CommandLine.Output()
		fmt.Fprintf(out, "usage: fetch [-dir DIR] [NAME...]\n\nbuilt-in datasets (* only when named; a mirror of their hosts can be set with %s):\n", datasets.EnvMirror)
		for _, n := range datasets.Names() {
			mark := " "
			if datasets.Large(n) {
				mark = "*"
			}
			fmt.Fprintf(out, "%s %-16s %s\n", mark, n, datasets.Describe(n))
		}
		fmt.Fprintf(out, "\nflags:\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	names := flag.Args()
	if len(names) == 0 {
		names = datasets.DefaultNames()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var failed []string
	for _, n := range names {
		if err := datasets.Fetch(ctx, n, *dir, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, err)
			failed = append(failed, n)
		}
		if ctx.Err() != nil {
			break
		}
	}
	if len(failed) > 0 {
		fmt.Fprintf(os.Stderr, "fetch: failed: %s\n", strings.Join(failed, ", "))
		os.Exit(1)
	}
}
