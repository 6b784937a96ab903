//go:build amd64 && !purego

package nn

import "golang.org/x/sys/cpu"

// haveAdamAVX512 reports whether adamAVX512 can run here.
var haveAdamAVX512 = cpu.X86.HasAVX512F

// adamAVX512 is adamElems on 8·n8 elements, eight at a time in float64
// lanes.
//
//go:noescape
func adamAVX512(n8 int, p, grad, m, v *float32, u *adamUpdate)
