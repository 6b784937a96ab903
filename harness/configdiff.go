package harness

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// configDiff compares two JSON documents structurally and describes the
// first difference ("" when identical).
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
	if show(a) == show(b) {
		return ""
	}
	return fmt.Sprintf("%s: stored %s, now %s", path, show(a), show(b))
}
