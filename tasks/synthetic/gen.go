package synthetic

import (
	"math/rand/v2"
	"slices"

	"arbench/harness"
)

// Special tokens, shared by every variant. Symbols of a variant's alphabets
// follow from FirstSymbol on (see the package documentation for each
// variant's layout).
const (
	// Pad fills rows to a common length; it is never a target.
	Pad = 0
	// BOS starts every sequence.
	BOS = 1
	// Sep separates the part to remember from the part to answer (copy,
	// selective-copy, assoc-recall).
	Sep = 2
	// Noise is the blank filling selective-copy's region.
	Noise = 3
	// Query asks for the needle.
	Query = 4
	// FirstSymbol is the first token of a variant's alphabets.
	FirstSymbol = 5
)

// example is one generated sequence. The model reads seq[:n-1] and predicts
// seq[1:]: target index t is the token seq[t+1] read after seq[:t+1].
type example struct {
	seq []int
	// loss marks the targets in the training loss and validation loss.
	loss []bool
	// answer marks the evaluated targets (answer positions).
	answer []bool
	// span is, per answer target, its dependency distance: the sequence
	// index of the answer minus that of the token that determines it (the
	// copied symbol, the value, dyck's matching opener), so the target at
	// index t reads that token as input x_{t+1−span}; 0 for other targets.
	span []int
}

// targets returns the number of targets (len(seq) − 1).
func (e *example) targets() int { return len(e.seq) - 1 }

// newExample allocates an example of n tokens with empty masks.
func newExample(n int) example {
	return example{seq: make([]int, 0, n), loss: make([]bool, n-1), answer: make([]bool, n-1), span: make([]int, n-1)}
}

// markAnswer marks the target predicting seq[i] (target index i−1) as an
// answer in the loss and in evaluation.
func (e *example) markAnswer(i int) {
	e.loss[i-1] = true
	e.answer[i-1] = true
}

// genCopy returns [BOS, x1..xL, Sep, x1..xL] with xi uniform over S symbols;
// the second copy is the answer.
func genCopy(rng *rand.Rand, S, L int) example {
	e := newExample(2*L + 2)
	e.seq = append(e.seq, BOS)
	for range L {
		e.seq = append(e.seq, FirstSymbol+rng.IntN(S))
	}
	e.seq = append(e.seq, Sep)
	e.seq = append(e.seq, e.seq[1:L+1]...)
	for i := L + 2; i < len(e.seq); i++ {
		e.markAnswer(i)
		e.span[i-1] = L + 1 // x_j at index j is answered at index L+1+j
	}
	return e
}

// genSelectiveCopy returns [BOS, region, Sep, m1..mM]: a region of N tokens
// holding M symbols (uniform over S) at random, ordered positions and Noise
// elsewhere, followed by the M symbols in order as the answer (Gu & Dao 2023,
// "Mamba", section 3.1).
func genSelectiveCopy(rng *rand.Rand, S, N, M int) example {
	e := newExample(N + M + 2)
	pos := rng.Perm(N)[:M]
	slices.Sort(pos)
	region := make([]int, N)
	for i := range region {
		region[i] = Noise
	}
	data := make([]int, M)
	for j, p := range pos {
		data[j] = FirstSymbol + rng.IntN(S)
		region[p] = data[j]
	}
	e.seq = append(e.seq, BOS)
	e.seq = append(e.seq, region...)
	e.seq = append(e.seq, Sep)
	e.seq = append(e.seq, data...)
	for j, p := range pos {
		i := N + 2 + j
		e.markAnswer(i)
		e.span[i-1] = i - (1 + p)
	}
	return e
}

// genAssocRecall returns [BOS, k1 v1 .. kP vP, Sep, q1 a1 .. qQ aQ]: P
// distinct keys (of K) with values (uniform over S, from a separate
// alphabet), then Q distinct keys in random order each followed by its
// value, the answer (multi-query associative recall, Arora et al. 2023,
// "Zoology").
func genAssocRecall(rng *rand.Rand, K, S, P, Q int) example {
	e := newExample(2*P + 2*Q + 2)
	keys := rng.Perm(K)[:P]
	vals := make([]int, P)
	e.seq = append(e.seq, BOS)
	for i, k := range keys {
		vals[i] = FirstSymbol + K + rng.IntN(S)
		e.seq = append(e.seq, FirstSymbol+k, vals[i])
	}
	e.seq = append(e.seq, Sep)
	for _, j := range rng.Perm(P)[:Q] {
		e.seq = append(e.seq, FirstSymbol+keys[j], vals[j])
		i := len(e.seq) - 1
		e.markAnswer(i)
		e.span[i-1] = i - (2 + 2*j) // the value v_j sits at index 2+2j
	}
	return e
}

// genNeedle returns [BOS, f×p, v, f×(d−1), Query, v] padded with Pad to
// maxPrefix+d+3 tokens: p uniform in [0, maxPrefix] filler tokens (uniform
// over F fillers), the needle v (uniform over S values, an alphabet
// disjoint from the fillers), d−1 fillers and the query, whose target v is
// the answer. The query is d tokens after the needle.
func genNeedle(rng *rand.Rand, F, S, d, maxPrefix int) example {
	n := maxPrefix + d + 3
	e := newExample(n)
	p := rng.IntN(maxPrefix + 1)
	v := FirstSymbol + F + rng.IntN(S)
	e.seq = append(e.seq, BOS)
	for range p {
		e.seq = append(e.seq, FirstSymbol+rng.IntN(F))
	}
	e.seq = append(e.seq, v)
	for range d - 1 {
		e.seq = append(e.seq, FirstSymbol+rng.IntN(F))
	}
	e.seq = append(e.seq, Query, v)
	i := len(e.seq) - 1
	e.markAnswer(i)
	e.span[i-1] = d + 1 // the needle is d tokens before the query, d+1 before the answer
	for len(e.seq) < n {
		e.seq = append(e.seq, Pad)
	}
	return e
}

// needleAlphabets are the sizes of needle's alphabets, in token order from
// FirstSymbol: fillers, values, keys.
type needleAlphabets struct{ fillers, values, keys int }

// genNeedleKeyed returns the needle task with n distractor pairs:
//
//	[BOS, prefix, k v, middle, Query, k, v, Pad…]
//
// padded to maxPrefix+2n+d+4 tokens. The n+1 pairs have distinct keys (of
// a.keys) and values uniform over a.values; the needle pair (k, v) is the
// first drawn, the query repeats its key, and the v after it is the only
// target, d tokens after the needle's v (the query key reads v as input
// x_{t−d}). Of the distractor pairs, m uniform in [0, min(n, (d−2)/2)]
// are placed in the middle between needle and query (d−2 tokens: 2m pair
// tokens among d−2−2m fillers) and the rest in the prefix (p fillers, p
// uniform in [0, maxPrefix], with the pairs at random places among them),
// so the queried pair is not always the last one and its key must be
// matched. At small d few pairs fit in the middle, so there the needle is
// more often the last pair (a model that copies the latest value scores
// above chance at small d; at d ≥ 2n+2 the needle's rank is uniform).
func genNeedleKeyed(rng *rand.Rand, a needleAlphabets, n, d, maxPrefix int) example {
	tokens := maxPrefix + 2*n + d + 4
	e := newExample(tokens)
	keys := rng.Perm(a.keys)[:n+1]
	pairs := make([][2]int, n+1)
	for j, k := range keys {
		pairs[j] = [2]int{FirstSymbol + a.fillers + a.values + k, FirstSymbol + a.fillers + rng.IntN(a.values)}
	}
	middle := rng.IntN(min(n, (d-2)/2) + 1)
	before := pairs[1 : 1+n-middle]
	after := pairs[1+n-middle:]
	p := rng.IntN(maxPrefix + 1)
	e.seq = append(e.seq, BOS)
	e.seq = appendHaystack(e.seq, rng, a.fillers, p, before)
	e.seq = append(e.seq, pairs[0][0], pairs[0][1])
	e.seq = appendHaystack(e.seq, rng, a.fillers, d-2-2*len(after), after)
	e.seq = append(e.seq, Query, pairs[0][0], pairs[0][1])
	i := len(e.seq) - 1
	e.markAnswer(i)
	e.span[i-1] = d + 1
	for len(e.seq) < tokens {
		e.seq = append(e.seq, Pad)
	}
	return e
}

// appendHaystack appends f fillers (uniform over F filler tokens) with the
// pairs at uniformly random places among them, in the given order.
func appendHaystack(seq []int, rng *rand.Rand, F, f int, pairs [][2]int) []int {
	units := f + len(pairs)
	at := rng.Perm(units)[:len(pairs)]
	slices.Sort(at)
	next := 0
	for u := range units {
		if next < len(at) && at[next] == u {
			seq = append(seq, pairs[next][0], pairs[next][1])
			next++
			continue
		}
		seq = append(seq, FirstSymbol+rng.IntN(F))
	}
	return seq
}

// genCopyMemory returns the copy-memory problem (Hochreiter & Schmidhuber
// 1997; Arjovsky, Shah & Bengio 2016, §4.1) as a sequence to continue:
// [BOS, x1..xK, Noise×D, Sep, x1..xK] with xi uniform over S symbols; the
// second copy is the answer, each symbol K+D+1 tokens after its source.
func genCopyMemory(rng *rand.Rand, S, K, D int) example {
	e := newExample(2*K + D + 2)
	e.seq = append(e.seq, BOS)
	for range K {
		e.seq = append(e.seq, FirstSymbol+rng.IntN(S))
	}
	for range D {
		e.seq = append(e.seq, Noise)
	}
	e.seq = append(e.seq, Sep)
	e.seq = append(e.seq, e.seq[1:K+1]...)
	for i := K + D + 2; i < len(e.seq); i++ {
		e.markAnswer(i)
		e.span[i-1] = K + D + 1
	}
	return e
}

// genDyck returns [BOS, w] for a random word w of n brackets of k types
// that is balanced with nesting depth at most maxDepth (Dyck-(k, m), Hewitt
// et al. 2020, "RNNs can generate bounded hierarchical languages with
// optimal memory"). Openers are FirstSymbol..FirstSymbol+k−1, the closer
// of type c is FirstSymbol+k+c. Where a bracket may be opened or closed it
// is opened with probability 1/2. Every target is in the loss; closers are
// the answers, with span the distance back to the matching opener.
func genDyck(rng *rand.Rand, k, n, maxDepth int) example {
	e := newExample(n + 1)
	e.seq = append(e.seq, BOS)
	var stack []int // seq indices of open brackets
	for pos := range n {
		depth := len(stack)
		remaining := n - pos
		open := depth == 0 || (depth < maxDepth && depth < remaining && rng.IntN(2) == 0)
		i := len(e.seq)
		e.loss[i-1] = true
		if open {
			e.seq = append(e.seq, FirstSymbol+rng.IntN(k))
			stack = append(stack, i)
			continue
		}
		o := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		e.seq = append(e.seq, e.seq[o]+k)
		e.answer[i-1] = true
		e.span[i-1] = i - o
	}
	return e
}

// group is the evaluation data of one sweep value: rows of equal width.
type group struct {
	sweep int
	width int // inputs per row (the longest sequence − 1)
	exs   []example
}

// batchOf turns examples into a batch of rows of width inputs, padded with
// Pad (targets −1). With lossOnly only loss targets are kept, else only
// answers.
func batchOf(exs []example, width int, lossOnly bool) harness.Batch {
	b := harness.Batch{Inputs: make([][]int, len(exs)), Targets: make([][]int, len(exs))}
	for r, e := range exs {
		in, tg := make([]int, width), make([]int, width)
		for t := range width {
			in[t], tg[t] = Pad, -1
			if t < e.targets() {
				in[t] = e.seq[t]
				keep := e.answer[t]
				if lossOnly {
					keep = e.loss[t]
				}
				if keep {
					tg[t] = e.seq[t+1]
				}
			}
		}
		b.Inputs[r], b.Targets[r] = in, tg
	}
	return b
}
