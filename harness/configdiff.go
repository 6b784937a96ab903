package harness

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// configDiff compares two JSON documents structurally and describes the
// first difference ("" when identical): key order and whitespace do not
// matter, and numbers are compared by value (see numbersEqual), so a file
// rewritten by another JSON tool still matches.
func configDiff(stored, current []byte) (string, error) {
	dec := func(b []byte) (any, error) {
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		var v any
		if err := d.Decode(&v); err != nil {
			return nil, fmt.Errorf("decode stored configuration: %w", err)
		}
		return v, nil
	}
	a, err := dec(stored)
	if err != nil {
		return "", err
	}
	b, err := dec(current)
	if err != nil {
		return "", err
	}
	return firstDiff(a, b, ""), nil
}

func firstDiff(a, b any, path string) string {
	show := func(v any) string {
		if v == nil {
			return "absent"
		}
		s, _ := json.Marshal(v)
		return string(s)
	}
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		keys := map[string]bool{}
		for k := range am {
			keys[k] = true
		}
		for k := range bm {
			keys[k] = true
		}
		for _, k := range sortedKeys(keys) {
			if d := firstDiff(am[k], bm[k], joinPath(path, k)); d != "" {
				return d
			}
		}
		return ""
	}
	as, aok := a.([]any)
	bs, bok := b.([]any)
	if aok && bok && len(as) == len(bs) {
		for i := range as {
			if d := firstDiff(as[i], bs[i], fmt.Sprintf("%s[%d]", path, i)); d != "" {
				return d
			}
		}
		return ""
	}
	if an, ok := a.(json.Number); ok {
		if bn, ok := b.(json.Number); ok && numbersEqual(an, bn) {
			return ""
		}
	}
	if show(a) == show(b) {
		return ""
	}
	return fmt.Sprintf("%s: stored %s, now %s", path, show(a), show(b))
}

// maxExactExponent bounds the decimal exponents compared exactly (far
// beyond float64's range, and small enough to keep big.Rat cheap).
const maxExactExponent = 400

// numbersEqual reports whether two JSON numbers have the same value, however
// they are written: exactly when both are integers (a uint64 seed such as
// 18446744073709551615 is not its neighbour, as it would be in float64),
// else as the float64 values a float field decodes them to ("1e-08" and
// "1e-8", "0.0010" and "0.001", "1.0" and "1" are all equal).
func numbersEqual(a, b json.Number) bool {
	if a == b {
		return true
	}
	ia, aok := integerValue(a)
	ib, bok := integerValue(b)
	if aok && bok {
		return ia.Cmp(ib) == 0
	}
	fa, aerr := strconv.ParseFloat(string(a), 64)
	fb, berr := strconv.ParseFloat(string(b), 64)
	return aerr == nil && berr == nil && fa == fb
}

// integerValue returns n as a big.Int when its value is an integer ("1e3"
// and "7.0" are), and false otherwise or when its exponent is out of
// bounds.
func integerValue(n json.Number) (*big.Int, bool) {
	s := string(n)
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		exp, err := strconv.Atoi(s[i+1:])
		if err != nil || exp > maxExactExponent || exp < -maxExactExponent {
			return nil, false
		}
	}
	if len(s) > 2*maxExactExponent {
		return nil, false
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok || !r.IsInt() {
		return nil, false
	}
	return r.Num(), true
}
