package harness

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
)

// RunIDLen is the length of a run id in hexadecimal digits (64 bits).
const RunIDLen = 16

// runIDScheme versions the input of RunID; changing what is hashed
// changes it.
const runIDScheme = "arbench-run/1"

// RunID is the stable id of one run of an experiment: the first RunIDLen
// hexadecimal digits of the SHA-256 of the compact JSON array
//
//	["arbench-run/1", TASK, MODEL, SEED, CONFIG]
//
// where TASK and MODEL are the task and model labels, SEED the seed as a
// JSON integer and CONFIG the run's resolved configuration (RunRecord.Config:
// task, model with its training settings, seed, backend, device) in
// canonical form: object keys sorted, no whitespace, every number rewritten
// as its value (integers exactly, other numbers as the shortest float64
// form: "1e-08", "1e-8" and "0.00000001" are one number, "1.0" is "1"), and
// without "load_weights", which says where the run's inputs lie, not what
// the run is. It is therefore the same in every process and on every
// machine, also for a results file re-serialised by another JSON tool; two
// runs share an id exactly when they are the same (task, model, seed) with
// the same configuration.
func RunID(k RunKey, config []byte) (string, error) {
	canon, err := canonicalRunConfig(config)
	if err != nil {
		return "", fmt.Errorf("run id of %s: %w", k, err)
	}
	input, err := json.Marshal([]any{runIDScheme, k.Task, k.Model, json.Number(strconv.FormatUint(k.Seed, 10)), canon})
	if err != nil {
		return "", fmt.Errorf("run id of %s: %w", k, err)
	}
	sum := sha256.Sum256(input)
	return hex.EncodeToString(sum[:])[:RunIDLen], nil
}

// ValidRunID reports whether s has the form RunID returns.
func ValidRunID(s string) bool {
	if len(s) != RunIDLen {
		return false
	}
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// canonicalRunConfig decodes a resolved run configuration and returns it
// in the canonical form RunID hashes.
func canonicalRunConfig(config []byte) (json.RawMessage, error) {
	d := json.NewDecoder(bytes.NewReader(config))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("decode configuration: %w", err)
	}
	if d.More() {
		return nil, fmt.Errorf("decode configuration: data after the JSON value")
	}
	if m, ok := v.(map[string]any); ok {
		delete(m, "load_weights")
	}
	b, err := json.Marshal(canonicalNumbers(v))
	if err != nil {
		return nil, fmt.Errorf("encode configuration: %w", err)
	}
	return b, nil
}

// canonicalNumbers rewrites every json.Number in v as its canonical form
// (see canonicalNumber); json.Marshal then sorts the object keys.
func canonicalNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		return canonicalNumber(x)
	case map[string]any:
		for k, e := range x {
			x[k] = canonicalNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = canonicalNumbers(e)
		}
	}
	return v
}

// canonicalNumber writes n by value, as configDiff compares numbers: an
// integer exactly in decimal ("1e3", "1000.0" → "1000"), any other number
// as the shortest form of its float64 value.
func canonicalNumber(n json.Number) json.Number {
	if i, ok := integerValue(n); ok {
		return json.Number(i.String())
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil {
		return n // out of float64's range: kept as written
	}
	return json.Number(strconv.FormatFloat(f, 'g', -1, 64))
}
