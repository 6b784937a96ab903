// Package split is the one rule by which arbench's generated tasks
// (tasks/seq2seq, tasks/image) assign an example to the training,
// validation or test split from a hash of its content, so that the fixed
// validation and test sets never occur in a training stream.
package split

import "fmt"

// Split is one of the three disjoint parts of an example space.
type Split int

const (
	Train Split = iota
	Valid
	Test
)

func (s Split) String() string {
	switch s {
	case Train:
		return "train"
	case Valid:
		return "valid"
	case Test:
		return "test"
	}
	return fmt.Sprintf("Split(%d)", int(s))
}

// Of returns the split of an example whose content hashes to h: h mod
// buckets is 0 for Test, 1 for Valid and anything else for Train.
func Of(h uint64, buckets int) Split {
	switch h % uint64(buckets) {
	case 0:
		return Test
	case 1:
		return Valid
	}
	return Train
}
