package gorgonia

// Deterministic reports that runs are bitwise reproducible: every kernel
// sums in an order fixed by the shapes alone (the GEMM's per-element order
// does not even depend on matrix size) and dropout masks come from the
// run's seed, so `arbench reproduce` compares metrics exactly.
func (b *Backend) Deterministic() bool { return true }
