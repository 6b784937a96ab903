package harness

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// SampleRecord is one line of samples.jsonl: the run that wrote it and the
// task's sample (without the model, task and seed keys the line adds).
type SampleRecord struct {
	Run    RunKey
	Sample Sample
}

// LoadSamples reads DIR/samples.jsonl (path may be the file or its
// directory) with ParseSamples. A missing file holds no samples (nil, nil):
// not every task writes any. Only a regular file of at most
// MaxResultsBytes is read.
func LoadSamples(path string) ([]SampleRecord, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, SamplesFileName)
	}
	b, err := readBounded(path, "samples")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return ParseSamples(path, b)
}

// ParseSamples decodes samples.jsonl content (name labels errors): one JSON
// object per line, blank lines skipped, each with a string model and task
// and an unsigned integer seed, as the runner writes them. Numbers in a
// sample decode as float64 (encoding/json's rule). A malformed line is an
// error naming its line number.
func ParseSamples(name string, b []byte) ([]SampleRecord, error) {
	var out []SampleRecord
	for n := 1; len(b) > 0; n++ {
		line, rest, _ := bytes.Cut(b, []byte{'\n'})
		b = rest
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		r, err := parseSampleLine(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, n, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// parseSampleLine decodes one line of samples.jsonl.
func parseSampleLine(line []byte) (SampleRecord, error) {
	var key struct {
		Model *string `json:"model"`
		Task  *string `json:"task"`
		Seed  *uint64 `json:"seed"`
	}
	if err := json.Unmarshal(line, &key); err != nil {
		return SampleRecord{}, fmt.Errorf("not a sample: %w", err)
	}
	var s Sample
	if err := json.Unmarshal(line, &s); err != nil || s == nil {
		return SampleRecord{}, fmt.Errorf("not a sample: a JSON object per line expected")
	}
	switch {
	case key.Model == nil || *key.Model == "":
		return SampleRecord{}, errors.New(`sample without "model"`)
	case key.Task == nil || *key.Task == "":
		return SampleRecord{}, errors.New(`sample without "task"`)
	case key.Seed == nil:
		return SampleRecord{}, errors.New(`sample without "seed"`)
	}
	delete(s, "model")
	delete(s, "task")
	delete(s, "seed")
	return SampleRecord{Run: RunKey{Task: *key.Task, Model: *key.Model, Seed: *key.Seed}, Sample: s}, nil
}
