package synthetic

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestGenCopyMemory: [BOS, x1..xK, Noise×D, Sep, x1..xK], the copy is the
// answer and the only part in the loss, every answer K+D+1 tokens after
// its source.
func TestGenCopyMemory(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const S, K = 5, 6
	for _, D := range []int{0, 1, 7, 40} {
		e := genCopyMemory(rng, S, K, D)
		if len(e.seq) != 2*K+D+2 || e.seq[0] != BOS || e.seq[K+D+1] != Sep {
			t.Fatalf("D=%d: %v", D, e.seq)
		}
		for i := K + 1; i <= K+D; i++ {
			if e.seq[i] != Noise {
				t.Fatalf("D=%d: token %d of the delay is %d, want Noise", D, i, e.seq[i])
			}
		}
		if !slices.Equal(e.seq[1:K+1], e.seq[K+D+2:]) {
			t.Fatalf("D=%d: copy %v of %v", D, e.seq[K+D+2:], e.seq[1:K+1])
		}
		for _, x := range e.seq[1 : K+1] {
			if x < FirstSymbol || x >= FirstSymbol+S {
				t.Fatalf("D=%d: symbol %d outside the alphabet", D, x)
			}
		}
		for k := range e.targets() {
			answer := k >= K+D+1
			if e.answer[k] != answer || e.loss[k] != answer {
				t.Fatalf("D=%d: target %d answer %v loss %v", D, k, e.answer[k], e.loss[k])
			}
			if answer && (e.span[k] != K+D+1 || e.seq[k+1-e.span[k]] != e.seq[k+1]) {
				t.Fatalf("D=%d: target %d span %d does not point at its source", D, k, e.span[k])
			}
		}
	}
}

// TestGenNeedleKeyed checks the keyed needle with distractors: the layout,
// the exact distance, distinct keys each followed by its value, the query
// naming one of them (the needle) and answered by its value, and that the
// needle is not always the last pair.
func TestGenNeedleKeyed(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	a := needleAlphabets{fillers: 4, values: 5, keys: 9}
	const n, maxPrefix = 3, 6
	keyLo, valueLo := FirstSymbol+a.fillers+a.values, FirstSymbol+a.fillers
	isKey := func(x int) bool { return x >= keyLo && x < keyLo+a.keys }
	isValue := func(x int) bool { return x >= valueLo && x < keyLo }
	rankLast := map[int]int{} // d → rows where the needle is the last pair
	for _, d := range []int{2, 5, 12, 30} {
		for range 200 {
			e := genNeedleKeyed(rng, a, n, d, maxPrefix)
			if len(e.seq) != maxPrefix+2*n+d+4 {
				t.Fatalf("d=%d: %d tokens, want %d", d, len(e.seq), maxPrefix+2*n+d+4)
			}
			q := slices.Index(e.seq, Query)
			if q < 0 || !isKey(e.seq[q+1]) || !isValue(e.seq[q+2]) {
				t.Fatalf("d=%d: query %v", d, e.seq)
			}
			pairs := map[int]int{} // key → value, from the haystack
			var keyAt []int
			for i, x := range e.seq[:q] {
				if isKey(x) {
					if _, dup := pairs[x]; dup || !isValue(e.seq[i+1]) {
						t.Fatalf("d=%d: key %d at %d repeated or not followed by a value: %v", d, x, i, e.seq)
					}
					pairs[x] = e.seq[i+1]
					keyAt = append(keyAt, i)
				}
			}
			if len(pairs) != n+1 {
				t.Fatalf("d=%d: %d pairs in the haystack, want %d: %v", d, len(pairs), n+1, e.seq)
			}
			k := e.seq[q+1]
			v, named := pairs[k]
			if !named || v != e.seq[q+2] {
				t.Fatalf("d=%d: query key %d names no pair or is answered %d, want %d", d, k, e.seq[q+2], v)
			}
			needle := slices.Index(e.seq, k) // the key's first occurrence
			if (q+1)-(needle+1) != d {
				t.Fatalf("d=%d: the query key is %d tokens after the needle's value", d, (q+1)-(needle+1))
			}
			if needle == keyAt[len(keyAt)-1] {
				rankLast[d]++
			}
			for i := q + 3; i < len(e.seq); i++ {
				if e.seq[i] != Pad {
					t.Fatalf("d=%d: token %d after the answer is %d, want Pad", d, i, e.seq[i])
				}
			}
			for j := range e.targets() {
				if e.answer[j] != (j == q+1) || e.loss[j] != (j == q+1) {
					t.Fatalf("d=%d: target %d answer %v loss %v", d, j, e.answer[j], e.loss[j])
				}
			}
			if got := e.seq[q+2-e.span[q+1]]; got != v || e.span[q+1] != d+1 {
				t.Fatalf("d=%d: span %d points at %d, want the needle's value %d", d, e.span[q+1], got, v)
			}
		}
	}
	// At d = 2 nothing fits between needle and query; at d = 30 the number
	// of pairs after the needle is uniform in 0..3, so it is last in about
	// a quarter of the rows.
	if rankLast[2] != 200 {
		t.Errorf("d=2: the needle was the last pair in %d of 200 rows, want all", rankLast[2])
	}
	if r := rankLast[30]; r < 25 || r > 80 {
		t.Errorf("d=30: the needle was the last pair in %d of 200 rows, want about 50", r)
	}
}
