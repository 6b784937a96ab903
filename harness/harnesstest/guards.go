package harnesstest

import (
	"arbench/harness"
	"arbench/nn"
)

// Interface guards: what each fake implements (harness.Model's optional
// interfaces are listed in the harness package comment).
var (
	_ harness.Model          = (*LM)(nil)
	_ harness.Trainer        = (*LM)(nil)
	_ harness.Scorer         = (*LM)(nil)
	_ harness.Distributioner = (*LM)(nil)
	_ harness.Stepper        = (*LM)(nil)
	_ harness.Config         = (*LMConfig)(nil)

	_ harness.Model  = (*Uniform)(nil)
	_ harness.Scorer = (*Uniform)(nil)
	_ harness.Config = (*UniformConfig)(nil)

	_ harness.Task   = (*Task)(nil)
	_ harness.Config = (*TaskConfig)(nil)

	_ nn.Backend = backend{}
)
