package bench

import (
	"context"
	"errors"
	"slices"

	"arbench/harness"
)

// Peers (Config.Peers) are measured interleaved: a model's point and the
// same point of its peer (peerKey) are both set up and warmed up, then
// their timed repeats alternate, model then peer, so that both sample the
// same minutes of a shared, drifting machine and the ratio of the pair is
// not the drift between two measurements taken minutes apart (on the
// 2-core benchmark machines the same binary's speed moved by 30% within
// ten minutes). Each round's two repeats also give a paired ratio
// (pairedRatios), whose spread the "Against peers" table reports.
//
// Memory: the peer is set up first and its memory is taken after its
// warm-up; the model's peak RSS, taken from its own set-up on, then also
// holds the peer's part of arbench's process (for a plugin, its protocol
// client and buffers, a few MiB; a plugin's own process is measured
// apart, PluginPeakRSS).

// partners pairs each model label with the label it is interleaved with:
// the first pair of peers listing it whose other model has no partner yet
// (a model is interleaved with at most one other).
func partners(peers []harness.BenchPeer) map[string]string {
	with := map[string]string{}
	for _, pr := range peers {
		_, a := with[pr.Model]
		_, b := with[pr.Peer]
		if !a && !b {
			with[pr.Model], with[pr.Peer] = pr.Peer, pr.Model
		}
	}
	return with
}

// pairing finds, for a model's point, the point of its partner to
// interleave it with.
type pairing struct {
	r    *runner
	with map[string]string
	// done holds the partner points already measured, by label.
	done map[string]map[pointKey]bool
	// peer reports whether a label is the peer side of its pair (set up
	// first).
	peer map[string]bool
	// plans holds each partner's plan, made once.
	plans map[string][]Point
}

func newPairing(r *runner) *pairing {
	pg := &pairing{r: r, with: partners(r.opt.Config.Peers), done: map[string]map[pointKey]bool{},
		peer: map[string]bool{}, plans: map[string][]Point{}}
	for _, pr := range r.opt.Config.Peers {
		if pg.with[pr.Peer] == pr.Model {
			pg.peer[pr.Peer] = true
		}
	}
	return pg
}

// measured reports whether label's point p was measured with its partner.
func (pg *pairing) measured(label string, p Point) bool { return pg.done[label][keyOf(p)] }

// partner returns the spec and the point of label's partner that pairs
// with p and is not measured yet, or nil.
func (pg *pairing) partner(label string, p Point) (*harness.ModelSpec, *Point) {
	other, ok := pg.with[label]
	if !ok {
		return nil, nil
	}
	i := slices.IndexFunc(pg.r.opt.Models, func(m harness.ModelSpec) bool { return m.Label == other })
	spec := &pg.r.opt.Models[i]
	if _, ok := pg.plans[other]; !ok {
		pg.plans[other] = pg.r.plan(spec)
	}
	for _, q := range pg.plans[other] {
		if peerKey(q) == peerKey(p) && !pg.measured(other, q) {
			return spec, &q
		}
	}
	return nil, nil
}

// measurePair measures a's point pa and b's point pb with their repeats
// interleaved; the peer side (pg.peer) is set up first. Either point may
// be skipped (then the other is measured alone).
func (pg *pairing) measurePair(ctx context.Context, a *harness.ModelSpec, pa Point, b *harness.ModelSpec, pb Point) (Point, Point, error) {
	pg.markDone(b.Label, pb)
	if pg.peer[a.Label] {
		pb, pa, err := pg.interleave(ctx, b, pb, a, pa)
		return pa, pb, err
	}
	return pg.interleave(ctx, a, pa, b, pb)
}

// interleave is measurePair with b the peer side.
func (pg *pairing) interleave(ctx context.Context, a *harness.ModelSpec, pa Point, b *harness.ModelSpec, pb Point) (Point, Point, error) {
	r := pg.r
	peer, pb, err := r.start(ctx, b, pb)
	if err != nil || peer == nil {
		pa, errA := r.measure(ctx, a, pa)
		return pa, pb, errors.Join(err, errA)
	}
	peer.takeMemory()
	run, pa, err := r.start(ctx, a, pa)
	if err != nil || run == nil {
		pb, errB := peer.complete(ctx)
		return pa, pb, errors.Join(err, errB)
	}
	run.p.InterleavedWith, peer.p.InterleavedWith = b.Label, a.Label
	for i := range max(run.repeats, peer.repeats) {
		for _, x := range []*pointRun{run, peer} {
			if i >= x.repeats {
				continue
			}
			if err := x.repeat(ctx); err != nil {
				return run.p, peer.p, errors.Join(run.close(err), peer.close(nil))
			}
		}
	}
	pa, errA := run.finish()
	pb, errB := peer.finish()
	return pa, pb, errors.Join(errA, errB)
}

func (pg *pairing) markDone(label string, p Point) {
	if pg.done[label] == nil {
		pg.done[label] = map[pointKey]bool{}
	}
	pg.done[label][keyOf(p)] = true
}

// pairedRatios returns the ratio of p's repeats to q's, round by round,
// when the two were interleaved with each other (nil otherwise).
func pairedRatios(p, q Point) []float64 {
	a, b := p.TokensPerSec.Values, q.TokensPerSec.Values
	if p.InterleavedWith != q.Model || q.InterleavedWith != p.Model || len(a) != len(b) {
		return nil
	}
	out := make([]float64, len(a))
	for i := range a {
		out[i] = a[i] / b[i]
	}
	return out
}
