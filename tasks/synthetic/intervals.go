package synthetic

import (
	"encoding/binary"
	"hash/fnv"
	"strconv"

	"arbench/harness"
	"arbench/internal/stats"
)

// Intervals. Every quantity the task measures over test rows carries a 95%
// interval over those rows (stats.Level):
//
//   - a proportion of rows (sequence accuracy, the error at one answer
//     index, an accuracy where each row holds one answer): the Wilson score
//     interval over the rows (stats.Wilson);
//   - a proportion of answers when rows hold several (copy's L symbols): a
//     percentile bootstrap over rows of the ratio Σcorrect/Σanswers
//     (ratioRows). The answers of one row are not independent trials (a
//     model that lost the row's content misses all of them), so a Wilson
//     interval over answers would be too narrow; the rows are independent;
//   - a ratio of sums over rows (nats per loss token): the same bootstrap;
//   - a mean over rows (loss, KL, gradient norms, first-error position):
//     a percentile bootstrap over rows (stats.BootstrapMean);
//   - a difference of two measurements of the same rows (the exposure
//     excess): a paired bootstrap (stats.PairedBootstrap).
//
// Bootstraps are seeded from the run's seed and the quantity's name
// (bootSeed), so a rerun reports the same intervals.

// ofRows is what the task's intervals count.
const ofRows = "rows"

// toInterval converts a stats interval.
func toInterval(iv stats.Interval, method string, n int) *harness.Interval {
	return &harness.Interval{Lo: harness.Number(iv.Lo), Hi: harness.Number(iv.Hi), Level: stats.Level, Method: method, N: n, Of: ofRows}
}

// wilson is the Wilson interval of k of n rows.
func wilson(k, n int) *harness.Interval {
	return toInterval(stats.Wilson(k, n, stats.Level), harness.CIWilson, n)
}

// bootSeed derives the seed of one bootstrap from the run's seed and the
// name of the quantity it resamples (FNV-1a of both).
func (t *Task) bootSeed(name string) uint64 {
	h := fnv.New64a()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], t.seed)
	h.Write(b[:])
	h.Write([]byte(name))
	return h.Sum64()
}

// bootstrap is the percentile bootstrap interval of the mean of xs (one
// value per row).
func (t *Task) bootstrap(name string, xs []float64) stats.Interval {
	return stats.BootstrapMean(xs, stats.Level, stats.Resamples, t.bootSeed(name))
}

// meanCI is bootstrap as a harness interval.
func (t *Task) meanCI(name string, xs []float64) *harness.Interval {
	return toInterval(t.bootstrap(name, xs), harness.CIBootstrap, len(xs))
}

// pairedCI is the paired bootstrap interval of mean(b − a), a[i] and b[i]
// measured on the same row i.
func (t *Task) pairedCI(name string, a, b []float64) *harness.Interval {
	iv := stats.PairedBootstrap(a, b, stats.Level, stats.Resamples, t.bootSeed(name))
	return toInterval(iv, harness.CIPairedBootstrap, len(a))
}

// rowCounts holds, per row, the correct answers and the answers of a
// proportion measured over rows.
type rowCounts struct{ correct, answers []int }

func (r *rowCounts) add(correct, answers int) {
	r.correct = append(r.correct, correct)
	r.answers = append(r.answers, answers)
}

// totals returns Σcorrect and Σanswers.
func (r *rowCounts) totals() (k, n int) {
	for i := range r.correct {
		k += r.correct[i]
		n += r.answers[i]
	}
	return k, n
}

// oneEach reports whether every row holds at most one answer.
func (r *rowCounts) oneEach() bool {
	for _, a := range r.answers {
		if a > 1 {
			return false
		}
	}
	return true
}

// interval is the proportion's interval (see the comment at the top):
// Wilson over the answers when each row holds at most one, else the row
// bootstrap of the ratio.
func (r *rowCounts) interval(t *Task, name string) *harness.Interval {
	k, n := r.totals()
	if r.oneEach() {
		return wilson(k, n)
	}
	return toInterval(r.bootstrap(t, name), harness.CIBootstrap, len(r.correct))
}

// bootstrap resamples rows for the ratio Σcorrect/Σanswers (ratioRows).
func (r *rowCounts) bootstrap(t *Task, name string) stats.Interval {
	num, den := make([]float64, len(r.correct)), make([]float64, len(r.correct))
	for i := range r.correct {
		num[i], den[i] = float64(r.correct[i]), float64(r.answers[i])
	}
	return t.bootstrap(name, ratioRows(num, den))
}

// ratioRows returns per-row values whose mean is the ratio R = Σnum/Σden
// and whose bootstrap is the bootstrap of R to first order: the ratio
// estimator's linearisation z_i = R + (num_i − R·den_i)/mean(den) (Cochran
// 1977, "Sampling techniques", §6.3; Efron & Tibshirani 1993, §21.3, the
// delta method's influence values). When every den_i is the same (a row
// of each sweep value holds as many answers or loss tokens), z_i =
// num_i/den_i exactly. Rows with den_i = 0 count as rows, as they were
// drawn.
func ratioRows(num, den []float64) []float64 {
	var sn, sd float64
	for i := range num {
		sn += num[i]
		sd += den[i]
	}
	R, mean := sn/sd, sd/float64(len(den))
	z := make([]float64, len(num))
	for i := range num {
		z[i] = R + (num[i]-R*den[i])/mean
	}
	return z
}

// setAccuracyBands fills s.Lo, s.Hi and s.CIMethod from one rowCounts per
// point. All points use one method: Wilson when every point's rows hold
// at most one answer each, else the row bootstrap.
func (t *Task) setAccuracyBands(s *harness.Series, points []rowCounts) {
	one := true
	for i := range points {
		one = one && points[i].oneEach()
	}
	s.Lo, s.Hi = make([]float64, len(points)), make([]float64, len(points))
	for i := range points {
		var iv stats.Interval
		if one {
			k, n := points[i].totals()
			iv = stats.Wilson(k, n, stats.Level)
		} else {
			iv = points[i].bootstrap(t, pointName(s, i))
		}
		s.Lo[i], s.Hi[i] = iv.Lo, iv.Hi
	}
	s.CIMethod = harness.CIBootstrap
	if one {
		s.CIMethod = harness.CIWilson
	}
}

// setWilsonBands fills s's bands with Wilson intervals of k[i] of n[i]
// rows per point.
func setWilsonBands(s *harness.Series, k, n []int) {
	s.Lo, s.Hi = make([]float64, len(k)), make([]float64, len(k))
	for i := range k {
		iv := stats.Wilson(k[i], n[i], stats.Level)
		s.Lo[i], s.Hi[i] = iv.Lo, iv.Hi
	}
	s.CIMethod = harness.CIWilson
}

// setMeanBands fills s's bands with bootstrap intervals of the mean of
// rows[i] (one value per row) per point.
func (t *Task) setMeanBands(s *harness.Series, rows [][]float64) {
	s.Lo, s.Hi = make([]float64, len(rows)), make([]float64, len(rows))
	for i, xs := range rows {
		iv := t.bootstrap(pointName(s, i), xs)
		s.Lo[i], s.Hi[i] = iv.Lo, iv.Hi
	}
	s.CIMethod = harness.CIBootstrap
}

// pointName names point i of s for its bootstrap seed.
func pointName(s *harness.Series, i int) string {
	return s.Name + "/" + s.Label + "/" + strconv.FormatFloat(s.X[i], 'g', -1, 64)
}
