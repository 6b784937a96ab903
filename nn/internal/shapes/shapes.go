// Package shapes holds the shape and dtype rules of the nn.Graph
// operations, shared by the backends (nn/gorgonia, nn/gotch) so that they
// accept and reject exactly the same programs and give the same result
// shapes.
//
// Each rule takes the operand shapes (and, where it matters, whether an
// operand is an integer tensor), returns the result shape, and panics on
// misuse, which is a programmer error. Every panic value is a string of the
// form "<backend>: <Op>: <what is wrong, with the shapes involved>", where
// the backend name is the Backend the rule is called on.
package shapes

import (
	"fmt"
	"slices"
)

// Backend is the name of the calling backend ("gorgonia", "gotch"); it
// prefixes the panic messages of the rules called on it.
type Backend string

// Operand describes one operand of an operation: its shape and whether it is
// an integer tensor (float32 otherwise).
type Operand struct {
	Shape []int
	Int   bool
}

// Size returns the number of elements of shape (1 for a scalar).
func Size(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

func (b Backend) panicf(format string, args ...any) {
	panic(fmt.Sprintf(string(b)+": "+format, args...))
}

// Float panics unless every operand is a float tensor.
func (b Backend) Float(op string, xs ...Operand) {
	for i, x := range xs {
		if x.Int {
			b.panicf("%s: operand %d (shape %v) is an integer tensor, want float", op, i, x.Shape)
		}
	}
}

// Ids panics unless ids, the index operand of op, is an integer tensor.
func (b Backend) Ids(op string, ids Operand) {
	if !ids.Int {
		b.panicf("%s: ids (shape %v) must be an integer tensor", op, ids.Shape)
	}
}

// Dims panics unless every dimension of shape is positive; what names the
// checked thing (an op, or an op and an input name).
func (b Backend) Dims(what string, shape []int) {
	for _, d := range shape {
		if d <= 0 {
			b.panicf("%s: non-positive dimension in shape %v", what, shape)
		}
	}
}

// ---- inputs and marks ----

// Param checks a parameter's shape against its n values.
func (b Backend) Param(name string, shape []int, n int) {
	b.Dims("Param "+name, shape)
	if Size(shape) != n {
		b.panicf("Param: %q has shape %v but %d values", name, shape, n)
	}
}

// Const checks a constant's shape against its n values.
func (b Backend) Const(shape []int, n int) {
	b.Dims("Const", shape)
	if n != Size(shape) {
		b.panicf("Const: %d values for shape %v", n, shape)
	}
}

// Output checks that x, marked as the output name, is a float tensor.
func (b Backend) Output(name string, x Operand) {
	if x.Int {
		b.panicf("Output %q: integer tensors cannot be returned", name)
	}
}

// Loss checks that x is a float scalar.
func (b Backend) Loss(x Operand) {
	b.Float("Loss", x)
	if len(x.Shape) != 0 {
		b.panicf("Loss: want a scalar (shape []), got shape %v", x.Shape)
	}
}

// ---- linear algebra ----

// MatMul returns the shape [m n] of op(a)·op(c) for 2-D float operands,
// where op transposes its operand when the flag is set.
func (b Backend) MatMul(a, c Operand, transA, transB bool) []int {
	b.Float("MatMul", a, c)
	if len(a.Shape) != 2 || len(c.Shape) != 2 {
		b.panicf("MatMul: want 2-D operands, got shapes %v and %v", a.Shape, c.Shape)
	}
	m, n, _ := b.Product("MatMul", a.Shape, c.Shape, transA, transB)
	return []int{m, n}
}

// BatchMatMul returns the shape [batch m n] of the batch of products
// op(a[i])·op(c[i]) for 3-D float operands with equal batch.
func (b Backend) BatchMatMul(a, c Operand, transA, transB bool) []int {
	b.Float("BatchMatMul", a, c)
	if len(a.Shape) != 3 || len(c.Shape) != 3 || a.Shape[0] != c.Shape[0] {
		b.panicf("BatchMatMul: want 3-D operands with equal batch, got shapes %v and %v", a.Shape, c.Shape)
	}
	m, n, _ := b.Product("BatchMatMul", a.Shape, c.Shape, transA, transB)
	return []int{a.Shape[0], m, n}
}

// Product returns the dimensions of op(A)·op(C) = [m n] (inner dimension
// k) over the last two axes of a and c, which have the same rank (2 or 3),
// and panics if the inner dimensions differ.
func (b Backend) Product(op string, a, c []int, transA, transB bool) (m, n, k int) {
	r := len(a)
	m, k = a[r-2], a[r-1]
	if transA {
		m, k = k, m
	}
	kc, n := c[r-2], c[r-1]
	if transB {
		kc, n = n, kc
	}
	if k != kc {
		b.panicf("%s: shapes %v and %v incompatible (transA=%t transB=%t)", op, a, c, transA, transB)
	}
	return m, n, k
}

// ---- element-wise ----

// Broadcast returns the shape of the element-wise op (Add, Sub, Mul) of
// float operands a and c: a's shape, where c's shape must equal a's or a
// trailing suffix of it (c is repeated over a's leading axes).
func (b Backend) Broadcast(op string, a, c Operand) []int {
	b.Float(op, a, c)
	if len(c.Shape) > len(a.Shape) || !slices.Equal(a.Shape[len(a.Shape)-len(c.Shape):], c.Shape) {
		b.panicf("%s: shapes %v and %v: the second must equal the first or a trailing suffix of it", op, a.Shape, c.Shape)
	}
	return slices.Clone(a.Shape)
}

// ---- shape manipulation ----

// Reshape returns shape, which must have positive dimensions and x's number
// of elements. x may be an integer tensor.
func (b Backend) Reshape(x Operand, shape []int) []int {
	b.Dims("Reshape", shape)
	if Size(shape) != Size(x.Shape) {
		b.panicf("Reshape: cannot reshape %v to %v", x.Shape, shape)
	}
	return slices.Clone(shape)
}

// Transpose returns the shape of x with its axes permuted (result axis d is
// axis perm[d] of x); perm must be a permutation of x's axes. x may be an
// integer tensor.
func (b Backend) Transpose(x Operand, perm []int) []int {
	r := len(x.Shape)
	seen := make([]bool, r)
	ok := len(perm) == r
	for _, p := range perm {
		if !ok || p < 0 || p >= r || seen[p] {
			ok = false
			break
		}
		seen[p] = true
	}
	if !ok {
		b.panicf("Transpose: %v is not a permutation of the axes of shape %v", perm, x.Shape)
	}
	shape := make([]int, r)
	for d, p := range perm {
		shape[d] = x.Shape[p]
	}
	return shape
}

// Slice returns the shape of [start,end) of axis of x, a non-empty range
// inside the axis. x may be an integer tensor.
func (b Backend) Slice(x Operand, axis, start, end int) []int {
	s := x.Shape
	if axis < 0 || axis >= len(s) || start < 0 || end > s[axis] || start >= end {
		b.panicf("Slice: axis %d range [%d,%d) invalid for shape %v", axis, start, end, s)
	}
	shape := slices.Clone(s)
	shape[axis] = end - start
	return shape
}

// Concat returns the shape of xs joined along axis, and each operand's
// extent on that axis. The operands (at least one) must agree on every other
// axis and all be integer or all float.
func (b Backend) Concat(axis int, xs ...Operand) (shape, ns []int) {
	if len(xs) == 0 {
		b.panicf("Concat: no operands")
	}
	first := xs[0].Shape
	if axis < 0 || axis >= len(first) {
		b.panicf("Concat: axis %d invalid for shape %v", axis, first)
	}
	shape = slices.Clone(first)
	shape[axis] = 0
	ns = make([]int, len(xs))
	for i, x := range xs {
		bad := x.Int != xs[0].Int || len(x.Shape) != len(first)
		for d := range first {
			if !bad && d != axis && x.Shape[d] != first[d] {
				bad = true
			}
		}
		if bad {
			all := make([][]int, len(xs))
			for j, u := range xs {
				all[j] = u.Shape
			}
			b.panicf("Concat: shapes %v disagree outside axis %d (or mix integer and float)", all, axis)
		}
		ns[i] = x.Shape[axis]
		shape[axis] += ns[i]
	}
	return shape, ns
}

// ---- indexing ----

// Gather returns the shape [N D] of the rows ids [N] (integer) of the float
// table [V D].
func (b Backend) Gather(table, ids Operand) []int {
	b.Float("Gather", table)
	b.Ids("Gather", ids)
	if len(table.Shape) != 2 || len(ids.Shape) != 1 {
		b.panicf("Gather: want table [V,D] and ids [N], got shapes %v and %v", table.Shape, ids.Shape)
	}
	return []int{ids.Shape[0], table.Shape[1]}
}

// Pick returns the shape [N] of x[i, ids[i]] for the float x [N V] and the
// integer ids [N].
func (b Backend) Pick(x, ids Operand) []int {
	b.Float("Pick", x)
	b.Ids("Pick", ids)
	if len(x.Shape) != 2 || len(ids.Shape) != 1 || ids.Shape[0] != x.Shape[0] {
		b.panicf("Pick: want x [N,V] and ids [N], got shapes %v and %v", x.Shape, ids.Shape)
	}
	return []int{x.Shape[0]}
}

// ---- normalisation, reduction, dropout ----

// LastAxis returns the shape of a normalisation over the last axis of the
// float x (Softmax, LogSoftmax): x's shape, which must have an axis.
func (b Backend) LastAxis(op string, x Operand) []int {
	b.Float(op, x)
	if len(x.Shape) == 0 {
		b.panicf("%s: shape %v has no last axis", op, x.Shape)
	}
	return slices.Clone(x.Shape)
}

// LayerNorm returns the shape of the layer normalisation of x over its last
// axis (Ba et al. 2016, "Layer Normalization"): x's shape. gamma and beta
// are float vectors of the size of that axis and eps is positive.
func (b Backend) LayerNorm(x, gamma, beta Operand, eps float32) []int {
	b.Float("LayerNorm", x, gamma, beta)
	xs, gs, bs := x.Shape, gamma.Shape, beta.Shape
	if len(xs) == 0 || len(gs) != 1 || !slices.Equal(gs, bs) || gs[0] != xs[len(xs)-1] {
		b.panicf("LayerNorm: x %v needs gamma and beta of shape [last axis of x], got %v and %v", xs, gs, bs)
	}
	if !(eps > 0) {
		b.panicf("LayerNorm: eps %g must be positive", eps)
	}
	return slices.Clone(xs)
}

// Sum returns the shape of the sum of all elements of the float x: a scalar
// (nil).
func (b Backend) Sum(x Operand) []int {
	b.Float("Sum", x)
	return nil
}

// Dropout returns the shape of dropout with probability p in [0,1) applied
// to the float x: x's shape.
func (b Backend) Dropout(x Operand, p float32) []int {
	b.Float("Dropout", x)
	if !(p >= 0 && p < 1) {
		b.panicf("Dropout: probability %g not in [0,1)", p)
	}
	return slices.Clone(x.Shape)
}

// ---- operand handles ----

// Handles converts the operands ts of op to the backend's handle type H,
// panicking if the build function has returned (done), if an operand is not
// a non-nil H, or if mine reports that it belongs to another graph.
func Handles[H comparable, T any](b Backend, op string, done bool, ts []T, mine func(H) bool) []H {
	if done {
		b.panicf("%s called after the build function returned", op)
	}
	var zero H
	out := make([]H, len(ts))
	for i, t := range ts {
		h, ok := any(t).(H)
		if !ok || h == zero {
			b.panicf("%s: operand %d is %T, not a tensor of this graph", op, i, t)
		}
		if !mine(h) {
			b.panicf("%s: operand %d belongs to another graph", op, i)
		}
		out[i] = h
	}
	return out
}

// Operands describes the handles hs to the rules with operand.
func Operands[H any](hs []H, operand func(H) Operand) []Operand {
	out := make([]Operand, len(hs))
	for i, h := range hs {
		out[i] = operand(h)
	}
	return out
}
