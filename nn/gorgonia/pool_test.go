package gorgonia

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"arbench/nn"
	"arbench/nn/nntest"
)

// poolCase is a graph for the pooling tests: its parameters, the feeds of
// successive runs, and whether it trains.
type poolCase struct {
	name  string
	train bool
	graph func() (*nn.ParamSet, []nn.Feeds, nn.BuildFunc)
}

// poolCases covers the graphs the brief of buffer pooling named: an MLP,
// attention blocks (a Transformer LM and a NAR with padding masks, with
// dropout), the LSTM and RNN sequence nodes and the unrolled fused cell
// (private scratch buffers, views of a state), values that are outputs
// and intermediates at once (views of them too, an integer output), and
// inference executables.
func poolCases() []poolCase {
	withRuns := func(f func(modelSize, float32) (*nn.ParamSet, nn.Feeds, nn.BuildFunc), p float32) func() (*nn.ParamSet, []nn.Feeds, nn.BuildFunc) {
		return func() (*nn.ParamSet, []nn.Feeds, nn.BuildFunc) {
			ps, feeds, build := f(memoryTestSize, p)
			return ps, []nn.Feeds{feeds, permuted(feeds)}, build
		}
	}
	lmEval := func() (*nn.ParamSet, []nn.Feeds, nn.BuildFunc) {
		ps, runs, build := withRuns(lmGraph, 0)()
		return ps, runs, outputsOnly(build)
	}
	return []poolCase{
		{"mlp", true, mlpGraph},
		{"mlp/eval", false, mlpGraph},
		{"transformer", true, withRuns(lmGraph, 0.1)},
		{"transformer/eval", false, lmEval},
		{"nar", true, withRuns(narGraph, 0.1)},
		{"lstm-sequence", true, recurrentGraph(true, nil)},
		{"rnn-sequence", true, recurrentGraph(false, nil)},
		{"lstm-cell", true, recurrentGraph(true, func(g nn.Graph) nn.Graph { return cellGraph{g} })},
		{"output-intermediate", true, sharedOutputGraph},
		{"output-intermediate/eval", false, sharedOutputGraph},
	}
}

// outputsOnly turns a training build into an inference one: the Loss is
// marked as an Output instead.
func outputsOnly(build nn.BuildFunc) nn.BuildFunc {
	return func(g nn.Graph) error { return build(lossAsOutput{g}) }
}

type lossAsOutput struct{ nn.Graph }

func (g lossAsOutput) Loss(x nn.Tensor) { g.Output("loss", x) }

// permuted returns feeds for another run: every input rotated by one
// element (ids stay in range), the seed changed.
func permuted(f nn.Feeds) nn.Feeds {
	out := nn.Feeds{Ints: map[string][]int{}, Floats: map[string][]float32{}, Seed: f.Seed + 1}
	for k, v := range f.Ints {
		out.Ints[k] = append(slices.Clone(v[1:]), v[0])
	}
	for k, v := range f.Floats {
		out.Floats[k] = append(slices.Clone(v[1:]), v[0])
	}
	return out
}

func mlpGraph() (*nn.ParamSet, []nn.Feeds, nn.BuildFunc) {
	const n, in, hid, out = 12, 7, 9, 5
	ps := nn.NewParamSet()
	rng := nn.NewRNG(3)
	l1, l2 := nn.NewLinear(ps, "l1", in, hid), nn.NewLinear(ps, "l2", hid, out)
	l1.Init(rng)
	l2.Init(rng)
	build := func(g nn.Graph) error {
		h := g.Tanh(l1.Forward(g, g.Floats("x", n, in)))
		logits := l2.Forward(g, g.ReLU(g.Dropout(h, 0.2)))
		g.Output("logits", logits)
		g.Loss(nn.CrossEntropy(g, logits, g.Ints("tg", n), g.Floats("w", n)))
		return nil
	}
	_, tg := tokenRows(n, out)
	feeds := nn.Feeds{
		Ints:   map[string][]int{"tg": tg},
		Floats: map[string][]float32{"x": nntest.RandomData(n*in, 4, 1), "w": nn.CrossEntropyWeights(tg)},
		Seed:   5,
	}
	return ps, []nn.Feeds{feeds, permuted(feeds)}, build
}

// recurrentGraph is an embedding, a layer of nn.LSTM (lstm) or nn.RNN and
// a softmax head, on g wrapped by wrap (nil: g itself, whose sequence
// nodes the layers use), with the final states as outputs.
func recurrentGraph(lstm bool, wrap func(nn.Graph) nn.Graph) func() (*nn.ParamSet, []nn.Feeds, nn.BuildFunc) {
	return func() (*nn.ParamSet, []nn.Feeds, nn.BuildFunc) {
		const b, steps, d, v = 3, 6, 8, 11
		ps := nn.NewParamSet()
		emb := nntest.RandomParam(ps, "emb", 1, 1, v, d)
		layer := newRecurrentLayer(ps, lstm, d, d, 2)
		head := nntest.RandomParam(ps, "head", 3, 0.3, v, d)
		build := func(g nn.Graph) error {
			if wrap != nil {
				g = wrap(g)
			}
			x := g.Reshape(g.Gather(g.Param(emb), g.Ints("ids", b*steps)), b, steps, d)
			zero := g.Const(make([]float32, b*d), b, d)
			outs := layer.forward(g, x, g.Floats("h0", b, d), zero)
			for i, o := range outs[1:] {
				g.Output(fmt.Sprint("state", i), o)
			}
			logits := g.MatMul(g.Reshape(outs[0], b*steps, d), g.Param(head), false, true)
			g.Loss(nn.CrossEntropy(g, logits, g.Ints("tg", b*steps), g.Floats("w", b*steps)))
			return nil
		}
		ids, tg := tokenRows(b*steps, v)
		feeds := nn.Feeds{
			Ints:   map[string][]int{"ids": ids, "tg": tg},
			Floats: map[string][]float32{"h0": nntest.RandomData(b*d, 6, 0.5), "w": nn.CrossEntropyWeights(tg)},
		}
		return ps, []nn.Feeds{feeds, permuted(feeds)}, build
	}
}

// sharedOutputGraph marks intermediates as outputs: a hidden layer that
// later ops read, a view (Reshape) and a copied slice of it, and the
// scalar the Loss is computed from; integer ops (a transpose and a copied
// slice) choose the rows of another output.
func sharedOutputGraph() (*nn.ParamSet, []nn.Feeds, nn.BuildFunc) {
	const n, d = 6, 4
	ps := nn.NewParamSet()
	w := nntest.RandomParam(ps, "w", 1, 0.5, d, d)
	u := nntest.RandomParam(ps, "u", 2, 0.5, d, d)
	build := func(g nn.Graph) error {
		h := g.Sigmoid(g.MatMul(g.Floats("x", n, d), g.Param(w), false, true))
		g.Output("h", h)
		g.Output("h/flat", g.Reshape(h, n*d))
		g.Output("h/cols", g.Slice(h, 1, 1, 3))
		y := g.Softmax(g.MatMul(h, g.Param(u), false, false))
		s := g.Sum(g.Mul(y, h))
		g.Output("s", s)
		ids := g.Slice(g.Transpose(g.Ints("ids", 2, 3), 1, 0), 1, 0, 1) // integer ops
		g.Output("rows", g.Gather(g.Param(w), g.Reshape(ids, 3)))
		g.Loss(g.Scale(s, 0.5))
		return nil
	}
	feeds := nn.Feeds{
		Ints:   map[string][]int{"ids": {1, 2, 3, 0, 1, 2}},
		Floats: map[string][]float32{"x": nntest.RandomData(n*d, 3, 1)},
	}
	return ps, []nn.Feeds{feeds, permuted(feeds)}, build
}

// runRecord is what a run produced: its outputs, its loss and every
// parameter's gradient.
type runRecord struct {
	outputs map[string]nn.Value
	loss    float64
	grads   map[string][]float32
}

// runAll compiles c's graph on be and runs it on each of c's feeds, then on
// the first again.
func runAll(t *testing.T, be *Backend, c poolCase) []runRecord {
	t.Helper()
	ps, runs, build := c.graph()
	exe, err := be.Compile(nn.Spec{Key: c.name, Params: ps, Train: c.train}, build)
	if err != nil {
		t.Fatal(err)
	}
	defer exe.Close()
	var recs []runRecord
	for _, f := range append(runs, runs[0]) {
		res, err := exe.Run(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		rec := runRecord{outputs: res.Outputs, loss: res.Loss, grads: map[string][]float32{}}
		for _, p := range ps.List() {
			rec.grads[p.Name] = slices.Clone(p.Grad)
		}
		recs = append(recs, rec)
	}
	return recs
}

// TestPoolingIsBitwise: with pooled buffers every output, loss and
// gradient has the bits of the run with a buffer per value, on every run.
func TestPoolingIsBitwise(t *testing.T) {
	for _, c := range poolCases() {
		t.Run(c.name, func(t *testing.T) {
			pooled, own := runAll(t, New(), c), runAll(t, New(withoutPooling()), c)
			for r := range pooled {
				compareRuns(t, fmt.Sprint("run ", r), pooled[r], own[r])
			}
		})
	}
}

func compareRuns(t *testing.T, what string, got, want runRecord) {
	t.Helper()
	if math.Float64bits(got.loss) != math.Float64bits(want.loss) {
		t.Errorf("%s: loss %v, want %v", what, got.loss, want.loss)
	}
	if len(got.outputs) != len(want.outputs) {
		t.Errorf("%s: %d outputs, want %d", what, len(got.outputs), len(want.outputs))
	}
	for name, w := range want.outputs {
		g := got.outputs[name]
		if !slices.Equal(g.Shape, w.Shape) || !sameFloatBits(g.Data, w.Data) {
			t.Errorf("%s: output %s differs", what, name)
		}
	}
	for name, w := range want.grads {
		if !sameFloatBits(got.grads[name], w) {
			t.Errorf("%s: gradient of %s differs", what, name)
		}
	}
}

func sameFloatBits(x, y []float32) bool {
	return slices.EqualFunc(x, y, func(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) })
}

// TestPooledValuesDoNotOverlap checks the plan itself: two values alive at
// a common position of the program (from their op to their last reader,
// through views; outputs, the Loss and gradients to the end) never share
// memory, with the lifetimes computed here independently of lastUses.
func TestPooledValuesDoNotOverlap(t *testing.T) {
	for _, c := range poolCases() {
		t.Run(c.name, func(t *testing.T) {
			ps, _, build := c.graph()
			exe, err := New().Compile(nn.Spec{Key: c.name, Params: ps, Train: c.train}, build)
			if err != nil {
				t.Fatal(err)
			}
			defer exe.Close()
			e := exe.(*executable)
			type span struct {
				t         *tensorT
				def, last int
			}
			base := func(t *tensorT) *tensorT {
				for t.viewOf != nil {
					t = t.viewOf
				}
				return t
			}
			spans := map[*tensorT]*span{}
			var order []*span
			for i, t := range e.prog {
				if t.viewOf == nil {
					s := &span{t: t, def: i, last: i}
					spans[t], order = s, append(order, s)
				}
				for _, a := range t.args {
					if s := spans[base(a)]; s != nil {
						s.last = i
					}
				}
			}
			for _, t := range e.keptValues() {
				if s := spans[base(t)]; s != nil {
					s.last = len(e.prog)
				}
			}
			checked := 0
			for i, a := range order {
				for _, b := range order[i+1:] {
					if a.def > b.last || b.def > a.last {
						continue
					}
					checked++
					if memOverlaps(a.t, b.t) {
						t.Fatalf("%s (node %d, alive %d–%d) and %s (node %d, alive %d–%d) share memory",
							a.t.kop.name, a.t.kop.id, a.def, a.last, b.t.kop.name, b.t.kop.id, b.def, b.last)
					}
				}
			}
			if checked == 0 {
				t.Fatal("no two values alive at once: the case checks nothing")
			}
		})
	}
}

// memOverlaps reports whether the output buffers of a and b share memory.
func memOverlaps(a, b *tensorT) bool {
	if a.isInt != b.isInt || a.kop.out.Len() == 0 || b.kop.out.Len() == 0 {
		return false
	}
	elem := uintptr(4)
	if a.isInt {
		elem = intBytes
	}
	a0, b0 := a.kop.out.Uintptr(), b.kop.out.Uintptr()
	return a0 < b0+uintptr(b.kop.out.Len())*elem && b0 < a0+uintptr(a.kop.out.Len())*elem
}

// TestPoolingShrinksTransformer: on a Transformer LM's training step, the
// pooled buffers hold at most a quarter of what one buffer per value holds
// (measured: 0.21 at this size; at issue 13's large size, 267 MiB instead
// of 1208 MiB), and no less than the largest set of values alive at once.
func TestPoolingShrinksTransformer(t *testing.T) {
	ps, _, build := lmGraph(memoryTestSize, 0)
	exe, err := New().Compile(nn.Spec{Key: "lm", Params: ps, Train: true}, build)
	if err != nil {
		t.Fatal(err)
	}
	defer exe.Close()
	st := exe.(*executable).held()
	if st.values*4 > st.unpooled {
		t.Errorf("pooled values hold %d bytes, one buffer per value %d: more than a quarter", st.values, st.unpooled)
	}
	if peak := peakLiveBytes(exe.(*executable)); st.values < peak {
		t.Errorf("pooled values hold %d bytes, less than the %d bytes alive at once", st.values, peak)
	}
	off, err := New(withoutPooling()).Compile(nn.Spec{Key: "lm", Params: ps, Train: true}, build)
	if err != nil {
		t.Fatal(err)
	}
	defer off.Close()
	if got := off.(*executable).held(); got.values != st.unpooled || got.unpooled != st.unpooled {
		t.Errorf("without pooling: values %d, unpooled %d; want both %d", got.values, got.unpooled, st.unpooled)
	}
}

// peakLiveBytes is the most bytes of op values alive at one position of
// e's program.
func peakLiveBytes(e *executable) int64 {
	last := lastUses(e.prog, e.keptValues())
	ends := map[int]int64{}
	var cur, peak int64
	for i, t := range e.prog {
		if t.kop.owns {
			n := valueBytes(t.size, t.isInt)
			cur += n
			ends[last[t]] += n
		}
		peak = max(peak, cur)
		cur -= ends[i]
	}
	return peak
}

// TestEqualConstantsShare: constants of the same bits share one buffer,
// counted once; constants differing only in the sign of a zero or a NaN's
// payload do not.
func TestEqualConstantsShare(t *testing.T) {
	nan1, nan2 := math.Float32frombits(0x7fc00001), math.Float32frombits(0x7fc00002)
	b := newBuilder(nn.Spec{Key: "consts"}, 0)
	c1 := b.Const([]float32{0, 1, 2}, 3).(*tensorT)
	c2 := b.Const([]float32{0, 1, 2}, 3).(*tensorT)
	c3 := b.Const([]float32{0, 1, 2}, 1, 3).(*tensorT)
	negZero := b.Const([]float32{float32(math.Copysign(0, -1)), 1, 2}, 3).(*tensorT)
	n1, n2 := b.Const([]float32{nan1}, 1).(*tensorT), b.Const([]float32{nan2}, 1).(*tensorT)
	if c1.val != c2.val || c1.val != c3.val {
		t.Error("equal constants have separate values")
	}
	if c1 == c2 || c1.n == c2.n {
		t.Error("equal constants share a node")
	}
	if negZero.val == c1.val || n1.val == n2.val {
		t.Error("constants of different bits share a value")
	}
	if want := int64(4 * (3 + 3 + 1 + 1)); b.inputBytes != want {
		t.Errorf("constants count %d bytes, want %d", b.inputBytes, want)
	}
}

// TestNoPoolEnv: ARBENCH_NO_POOL accepts 1 (off), 0 and unset (on) and
// nothing else, and opening the backend reports a bad value.
func TestNoPoolEnv(t *testing.T) {
	for v, off := range map[string]bool{"": false, "0": false, "1": true} {
		if got, err := parseNoPool(v); err != nil || got != off {
			t.Errorf("parseNoPool(%q) = %v, %v; want %v", v, got, err, off)
		}
	}
	for _, bad := range []string{"yes", "true", " 1", "2"} {
		if _, err := parseNoPool(bad); err == nil || !strings.Contains(err.Error(), noPoolEnv) {
			t.Errorf("parseNoPool(%q): err %v, want one naming %s", bad, err, noPoolEnv)
		}
	}
	_, err := parseNoPool("on")
	saved := poolEnvErr
	defer func() { poolEnvErr = saved }()
	poolEnvErr = err
	if _, err := nn.OpenBackend("gorgonia", "cpu"); err == nil || !strings.Contains(err.Error(), noPoolEnv) {
		t.Errorf("OpenBackend with a bad %s: %v", noPoolEnv, err)
	}
	if New().noPool != poolOff || !New(withoutPooling()).noPool {
		t.Error("New does not follow the environment or withoutPooling")
	}
}

// TestCloseDropsBuffers: Close drops every op's buffer and held reports
// nothing afterwards.
func TestCloseDropsBuffers(t *testing.T) {
	ps, _, build := sharedOutputGraph()
	exe, err := New().Compile(nn.Spec{Key: "close", Params: ps, Train: true}, build)
	if err != nil {
		t.Fatal(err)
	}
	e := exe.(*executable)
	prog := slices.Clone(e.prog)
	if e.held().values == 0 {
		t.Fatal("no buffers before Close")
	}
	exe.Close()
	for _, t2 := range prog {
		if t2.kop.out != nil {
			t.Fatalf("%s keeps its buffer after Close", t2.kop.name)
		}
	}
	if st := e.held(); st.total() != 0 {
		t.Errorf("held after Close: %+v", st)
	}
}
