package shapes

import (
	"slices"
	"strings"
	"testing"
)

const rules Backend = "test"

func f(shape ...int) Operand { return Operand{Shape: shape} }
func i(shape ...int) Operand { return Operand{Shape: shape, Int: true} }

// panicText runs fn and returns its panic message ("" if it returned).
func panicText(t *testing.T, fn func()) (msg string) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			s, ok := r.(string)
			if !ok {
				t.Errorf("panic value %T, want string", r)
			}
			msg = s
		}
	}()
	fn()
	return ""
}

// TestAccepted checks the result shape of each rule on valid operands.
func TestAccepted(t *testing.T) {
	cases := []struct {
		name string
		got  func() []int
		want []int
	}{
		{"MatMul", func() []int { return rules.MatMul(f(2, 3), f(3, 4), false, false) }, []int{2, 4}},
		{"MatMul transA", func() []int { return rules.MatMul(f(3, 2), f(3, 4), true, false) }, []int{2, 4}},
		{"MatMul transB", func() []int { return rules.MatMul(f(2, 3), f(4, 3), false, true) }, []int{2, 4}},
		{"MatMul both", func() []int { return rules.MatMul(f(3, 2), f(4, 3), true, true) }, []int{2, 4}},
		{"BatchMatMul", func() []int { return rules.BatchMatMul(f(5, 2, 3), f(5, 3, 4), false, false) }, []int{5, 2, 4}},
		{"BatchMatMul trans", func() []int { return rules.BatchMatMul(f(5, 3, 2), f(5, 4, 3), true, true) }, []int{5, 2, 4}},
		{"Broadcast same", func() []int { return rules.Broadcast("Add", f(2, 3), f(2, 3)) }, []int{2, 3}},
		{"Broadcast suffix", func() []int { return rules.Broadcast("Mul", f(4, 2, 3), f(3)) }, []int{4, 2, 3}},
		{"Broadcast scalar", func() []int { return rules.Broadcast("Sub", f(2), f()) }, []int{2}},
		{"Reshape", func() []int { return rules.Reshape(f(2, 3), []int{3, 2}) }, []int{3, 2}},
		{"Reshape int", func() []int { return rules.Reshape(i(6), []int{1, 6}) }, []int{1, 6}},
		{"Transpose", func() []int { return rules.Transpose(f(2, 3, 4), []int{2, 0, 1}) }, []int{4, 2, 3}},
		{"Transpose scalar", func() []int { return rules.Transpose(f(), nil) }, []int{}},
		{"Slice", func() []int { return rules.Slice(f(2, 5), 1, 1, 4) }, []int{2, 3}},
		{"Slice int", func() []int { return rules.Slice(i(4), 0, 0, 4) }, []int{4}},
		{"Concat", func() []int { s, _ := rules.Concat(1, f(2, 1), f(2, 3)); return s }, []int{2, 4}},
		{"Concat extents", func() []int { _, ns := rules.Concat(0, i(1, 2), i(3, 2), i(2, 2)); return ns }, []int{1, 3, 2}},
		{"Gather", func() []int { return rules.Gather(f(10, 4), i(3)) }, []int{3, 4}},
		{"Pick", func() []int { return rules.Pick(f(3, 10), i(3)) }, []int{3}},
		{"LastAxis", func() []int { return rules.LastAxis("Softmax", f(2, 3)) }, []int{2, 3}},
		{"LayerNorm", func() []int { return rules.LayerNorm(f(2, 3), f(3), f(3), 1e-5) }, []int{2, 3}},
		{"Sum", func() []int { return rules.Sum(f(2, 3)) }, nil},
		{"Dropout", func() []int { return rules.Dropout(f(2, 3), 0.5) }, []int{2, 3}},
		{"Dropout 0", func() []int { return rules.Dropout(f(2), 0) }, []int{2}},
	}
	for _, c := range cases {
		var got []int
		if msg := panicText(t, func() { got = c.got() }); msg != "" {
			t.Errorf("%s: panicked: %s", c.name, msg)
			continue
		}
		if !slices.Equal(got, c.want) || (c.want == nil) != (got == nil) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
	m, n, k := rules.Product("BatchMatMul", []int{7, 3, 2}, []int{7, 3, 5}, true, false)
	if m != 2 || n != 5 || k != 3 {
		t.Errorf("Product: got m=%d n=%d k=%d, want 2 5 3", m, n, k)
	}
	// Checks without a result must not panic on valid operands.
	for name, fn := range map[string]func(){
		"Float":  func() { rules.Float("Tanh", f(2), f()) },
		"Ids":    func() { rules.Ids("Gather", i(2)) },
		"Dims":   func() { rules.Dims("Floats x", []int{1, 2}) },
		"Param":  func() { rules.Param("w", []int{2, 3}, 6) },
		"Const":  func() { rules.Const(nil, 1) },
		"Output": func() { rules.Output("y", f(2)) },
		"Loss":   func() { rules.Loss(f()) },
	} {
		if msg := panicText(t, fn); msg != "" {
			t.Errorf("%s: panicked: %s", name, msg)
		}
	}
}

// TestResultsAreFresh checks that a result shape never aliases an operand's
// (backends keep result shapes in their tensors).
func TestResultsAreFresh(t *testing.T) {
	x := f(2, 3)
	for name, s := range map[string][]int{
		"Broadcast": rules.Broadcast("Add", x, f(3)),
		"LastAxis":  rules.LastAxis("Softmax", x),
		"LayerNorm": rules.LayerNorm(x, f(3), f(3), 1),
		"Dropout":   rules.Dropout(x, 0.1),
		"Slice":     rules.Slice(x, 0, 0, 2),
	} {
		s[0] = -1
		if x.Shape[0] != 2 {
			t.Fatalf("%s: result aliases the operand's shape", name)
		}
	}
	want := []int{3, 2}
	got := rules.Reshape(x, want)
	got[0] = -1
	if want[0] != 3 {
		t.Error("Reshape: result aliases the requested shape")
	}
}

// TestRejected checks that each rule rejects misuse with a message that
// starts with the backend and op and names the shapes involved.
func TestRejected(t *testing.T) {
	cases := []struct {
		name string
		want string // the whole message after "test: "
		fn   func()
	}{
		{"MatMul inner", "MatMul: shapes [2 3] and [4 5] incompatible (transA=false transB=false)",
			func() { rules.MatMul(f(2, 3), f(4, 5), false, false) }},
		{"MatMul trans inner", "MatMul: shapes [2 3] and [3 4] incompatible (transA=true transB=false)",
			func() { rules.MatMul(f(2, 3), f(3, 4), true, false) }},
		{"MatMul rank", "MatMul: want 2-D operands, got shapes [2 3 4] and [4 5]",
			func() { rules.MatMul(f(2, 3, 4), f(4, 5), false, false) }},
		{"MatMul int", "MatMul: operand 1 (shape [3 4]) is an integer tensor, want float",
			func() { rules.MatMul(f(2, 3), i(3, 4), false, false) }},
		{"BatchMatMul batch", "BatchMatMul: want 3-D operands with equal batch, got shapes [2 2 3] and [3 3 2]",
			func() { rules.BatchMatMul(f(2, 2, 3), f(3, 3, 2), false, false) }},
		{"BatchMatMul rank", "BatchMatMul: want 3-D operands with equal batch, got shapes [2 3] and [3 2]",
			func() { rules.BatchMatMul(f(2, 3), f(3, 2), false, false) }},
		{"BatchMatMul inner", "BatchMatMul: shapes [2 2 3] and [2 2 3] incompatible (transA=false transB=false)",
			func() { rules.BatchMatMul(f(2, 2, 3), f(2, 2, 3), false, false) }},
		{"Broadcast prefix", "Add: shapes [2 3] and [2]: the second must equal the first or a trailing suffix of it",
			func() { rules.Broadcast("Add", f(2, 3), f(2)) }},
		{"Broadcast longer", "Mul: shapes [3] and [2 3]: the second must equal the first or a trailing suffix of it",
			func() { rules.Broadcast("Mul", f(3), f(2, 3)) }},
		{"Broadcast int", "Sub: operand 0 (shape [2]) is an integer tensor, want float",
			func() { rules.Broadcast("Sub", i(2), f(2)) }},
		{"Float", "Tanh: operand 0 (shape [2]) is an integer tensor, want float", func() { rules.Float("Tanh", i(2)) }},
		{"Ids", "Pick: ids (shape [2]) must be an integer tensor", func() { rules.Ids("Pick", f(2)) }},
		{"Dims", "Floats x: non-positive dimension in shape [2 0]", func() { rules.Dims("Floats x", []int{2, 0}) }},
		{"Param dims", "Param w: non-positive dimension in shape [-1]", func() { rules.Param("w", []int{-1}, 1) }},
		{"Param size", `Param: "w" has shape [2 3] but 5 values`, func() { rules.Param("w", []int{2, 3}, 5) }},
		{"Const size", "Const: 2 values for shape [3]", func() { rules.Const([]int{3}, 2) }},
		{"Const dims", "Const: non-positive dimension in shape [0]", func() { rules.Const([]int{0}, 0) }},
		{"Output int", `Output "y": integer tensors cannot be returned`, func() { rules.Output("y", i(2)) }},
		{"Loss shape", "Loss: want a scalar (shape []), got shape [2]", func() { rules.Loss(f(2)) }},
		{"Loss int", "Loss: operand 0 (shape []) is an integer tensor, want float", func() { rules.Loss(i()) }},
		{"Reshape size", "Reshape: cannot reshape [2 3] to [4 2]", func() { rules.Reshape(f(2, 3), []int{4, 2}) }},
		{"Reshape dims", "Reshape: non-positive dimension in shape [-2 -3]", func() { rules.Reshape(f(2, 3), []int{-2, -3}) }},
		{"Transpose repeat", "Transpose: [0 0] is not a permutation of the axes of shape [2 3]",
			func() { rules.Transpose(f(2, 3), []int{0, 0}) }},
		{"Transpose length", "Transpose: [0] is not a permutation of the axes of shape [2 3]",
			func() { rules.Transpose(f(2, 3), []int{0}) }},
		{"Transpose range", "Transpose: [0 2] is not a permutation of the axes of shape [2 3]",
			func() { rules.Transpose(f(2, 3), []int{0, 2}) }},
		{"Slice end", "Slice: axis 1 range [2,4) invalid for shape [2 3]", func() { rules.Slice(f(2, 3), 1, 2, 4) }},
		{"Slice empty", "Slice: axis 0 range [1,1) invalid for shape [2 3]", func() { rules.Slice(f(2, 3), 0, 1, 1) }},
		{"Slice axis", "Slice: axis 2 range [0,1) invalid for shape [2 3]", func() { rules.Slice(f(2, 3), 2, 0, 1) }},
		{"Slice start", "Slice: axis 0 range [-1,1) invalid for shape [2 3]", func() { rules.Slice(f(2, 3), 0, -1, 1) }},
		{"Concat none", "Concat: no operands", func() { rules.Concat(0) }},
		{"Concat axis", "Concat: axis 2 invalid for shape [2 3]", func() { rules.Concat(2, f(2, 3)) }},
		{"Concat shapes", "Concat: shapes [[2 3] [3 3]] disagree outside axis 1 (or mix integer and float)",
			func() { rules.Concat(1, f(2, 3), f(3, 3)) }},
		{"Concat rank", "Concat: shapes [[2 3] [2 3 1]] disagree outside axis 0 (or mix integer and float)",
			func() { rules.Concat(0, f(2, 3), f(2, 3, 1)) }},
		{"Concat mix", "Concat: shapes [[2] [2]] disagree outside axis 0 (or mix integer and float)",
			func() { rules.Concat(0, f(2), i(2)) }},
		{"Gather float ids", "Gather: ids (shape [3]) must be an integer tensor", func() { rules.Gather(f(4, 2), f(3)) }},
		{"Gather int table", "Gather: operand 0 (shape [4 2]) is an integer tensor, want float",
			func() { rules.Gather(i(4, 2), i(3)) }},
		{"Gather ranks", "Gather: want table [V,D] and ids [N], got shapes [4 2] and [3 1]",
			func() { rules.Gather(f(4, 2), i(3, 1)) }},
		{"Pick rows", "Pick: want x [N,V] and ids [N], got shapes [3 4] and [2]", func() { rules.Pick(f(3, 4), i(2)) }},
		{"Pick float ids", "Pick: ids (shape [3]) must be an integer tensor", func() { rules.Pick(f(3, 4), f(3)) }},
		{"LastAxis scalar", "Softmax: shape [] has no last axis", func() { rules.LastAxis("Softmax", f()) }},
		{"LastAxis int", "LogSoftmax: operand 0 (shape [2]) is an integer tensor, want float",
			func() { rules.LastAxis("LogSoftmax", i(2)) }},
		{"LayerNorm gamma", "LayerNorm: x [2 3] needs gamma and beta of shape [last axis of x], got [2] and [2]",
			func() { rules.LayerNorm(f(2, 3), f(2), f(2), 1e-5) }},
		{"LayerNorm beta", "LayerNorm: x [2 3] needs gamma and beta of shape [last axis of x], got [3] and [1 3]",
			func() { rules.LayerNorm(f(2, 3), f(3), f(1, 3), 1e-5) }},
		{"LayerNorm scalar", "LayerNorm: x [] needs gamma and beta of shape [last axis of x], got [1] and [1]",
			func() { rules.LayerNorm(f(), f(1), f(1), 1e-5) }},
		{"LayerNorm int", "LayerNorm: operand 2 (shape [3]) is an integer tensor, want float",
			func() { rules.LayerNorm(f(2, 3), f(3), i(3), 1e-5) }},
		{"LayerNorm eps", "LayerNorm: eps 0 must be positive", func() { rules.LayerNorm(f(2, 3), f(3), f(3), 0) }},
		{"Sum int", "Sum: operand 0 (shape [2]) is an integer tensor, want float", func() { rules.Sum(i(2)) }},
		{"Dropout p", "Dropout: probability 1 not in [0,1)", func() { rules.Dropout(f(2), 1) }},
		{"Dropout negative", "Dropout: probability -0.5 not in [0,1)", func() { rules.Dropout(f(2), -0.5) }},
		{"Dropout int", "Dropout: operand 0 (shape [2]) is an integer tensor, want float", func() { rules.Dropout(i(2), 0.5) }},
	}
	for _, c := range cases {
		msg := panicText(t, c.fn)
		if want := "test: " + c.want; msg != want {
			t.Errorf("%s: panic %q, want %q", c.name, msg, want)
		}
	}
}

// TestBackendPrefix checks that the backend names the message.
func TestBackendPrefix(t *testing.T) {
	msg := panicText(t, func() { Backend("gotch").Sum(i(1)) })
	if !strings.HasPrefix(msg, "gotch: Sum: ") {
		t.Errorf("panic %q does not start with the backend and op", msg)
	}
}

func TestSize(t *testing.T) {
	for _, c := range []struct {
		shape []int
		want  int
	}{{nil, 1}, {[]int{3}, 3}, {[]int{2, 3, 4}, 24}} {
		if got := Size(c.shape); got != c.want {
			t.Errorf("Size(%v) = %d, want %d", c.shape, got, c.want)
		}
	}
}

type handle struct{ graph int }

func TestHandles(t *testing.T) {
	mine := func(h *handle) bool { return h.graph == 1 }
	a, b := &handle{1}, &handle{1}
	got := Handles(rules, "Add", false, []any{a, b}, mine)
	if len(got) != 2 || got[0] != a || got[1] != b {
		t.Errorf("Handles: got %v", got)
	}
	for _, c := range []struct {
		name, want string
		fn         func()
	}{
		{"done", "test: Tanh called after the build function returned",
			func() { Handles(rules, "Tanh", true, []any{a}, mine) }},
		{"foreign type", "test: Tanh: operand 0 is int, not a tensor of this graph",
			func() { Handles(rules, "Tanh", false, []any{3}, mine) }},
		{"nil handle", "test: Add: operand 1 is *shapes.handle, not a tensor of this graph",
			func() { Handles(rules, "Add", false, []any{a, (*handle)(nil)}, mine) }},
		{"other graph", "test: Add: operand 1 belongs to another graph",
			func() { Handles(rules, "Add", false, []any{a, &handle{2}}, mine) }},
	} {
		if msg := panicText(t, c.fn); msg != c.want {
			t.Errorf("%s: panic %q, want %q", c.name, msg, c.want)
		}
	}
	ops := Operands([]*handle{a, {7}}, func(h *handle) Operand { return Operand{Shape: []int{h.graph}, Int: h.graph > 1} })
	if len(ops) != 2 || ops[1].Shape[0] != 7 || !ops[1].Int || ops[0].Int {
		t.Errorf("Operands: got %v", ops)
	}
}
