package datasets

import (
	"fmt"
	"strings"

	"arbench/harness"
)

// Splits is a text corpus divided into train, validation and test bytes.
type Splits struct {
	Train, Valid, Test []byte
	// Refs are the files read, for the run's manifest: the corpus's one
	// file, or its train, validation and test files in that order.
	Refs []harness.DatasetRef
	// Scheme says how the corpus was split, for reports: "published
	// train/valid/test files", "standard split 90000000/5000000/5000000
	// bytes" or "90/5/5 split of 1681817 bytes".
	Scheme string
}

// LoadSplits reads the named built-in text corpus from dir (re-verifying
// its checksums, as Load does) and splits it the way results on it are
// published:
//
//   - a corpus published as separate files (wikitext-103-raw) is those
//     files;
//   - a corpus with a standard split (enwik8 and text8: the first
//     90,000,000 bytes train, the next 5,000,000 validation, the last
//     5,000,000 test) is cut there, and a file of another size is an error;
//   - any other corpus (jargon) is cut contiguously 90/5/5 as SplitFractions
//     does, which is the rule of the text task's Split.
func LoadSplits(name, dir string) (Splits, error) {
	c, err := lookup(name)
	if err != nil {
		return Splits{}, err
	}
	return c.loadSplits(dir)
}

func (c corpus) loadSplits(dir string) (Splits, error) {
	if c.kind != KindText {
		return Splits{}, fmt.Errorf("datasets: %s is not a text corpus but a dataset of %s; text corpora: %s",
			c.name, c.kind, strings.Join(NamesOf(KindText), ", "))
	}
	data, refs, err := c.read(dir)
	if err != nil {
		return Splits{}, err
	}
	if c.splitFiles {
		if len(data) != 3 {
			return Splits{}, fmt.Errorf("datasets: %s: want 3 files (train, valid, test), have %d", c.name, len(data))
		}
		return Splits{Train: data[0], Valid: data[1], Test: data[2], Refs: refs, Scheme: "published train/valid/test files"}, nil
	}
	if len(data) != 1 {
		return Splits{}, fmt.Errorf("datasets: %s: want 1 file to split, have %d", c.name, len(data))
	}
	return c.cut(data[0], refs)
}

// cut splits the one file of c at its standard split, or 90/5/5 when it
// has none.
func (c corpus) cut(b []byte, refs []harness.DatasetRef) (Splits, error) {
	sizes := c.splitSizes
	scheme := fmt.Sprintf("standard split %d/%d/%d bytes", sizes[0], sizes[1], sizes[2])
	if sizes == [3]int64{} {
		tr, va, te := SplitFractions(len(b))
		sizes = [3]int64{int64(tr), int64(va), int64(te)}
		scheme = fmt.Sprintf("90/5/5 split of %d bytes", len(b))
	}
	if n := sizes[0] + sizes[1] + sizes[2]; n != int64(len(b)) {
		return Splits{}, fmt.Errorf("datasets: %s has %d bytes, but its standard split needs %d", c.name, len(b), n)
	}
	return Splits{
		Train:  b[:sizes[0]],
		Valid:  b[sizes[0] : sizes[0]+sizes[1]],
		Test:   b[sizes[0]+sizes[1]:],
		Refs:   refs,
		Scheme: scheme,
	}, nil
}

// SplitFractions returns the sizes of the contiguous train, valid and test
// splits of an n-byte corpus without a published split: train =
// floor(90·n/100), valid = floor(5·n/100) and test the remaining bytes. It
// is the same rule as tasks/text's Split (on 100,000,000 bytes it gives the
// standard enwik8/text8 split).
func SplitFractions(n int) (train, valid, test int) {
	train = n * 90 / 100
	valid = n * 5 / 100
	return train, valid, n - train - valid
}
