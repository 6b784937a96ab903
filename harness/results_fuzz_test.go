package harness_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"arbench/harness"
)

// FuzzParseResults feeds arbitrary bytes to the results.json loader. It
// must never panic, and a file it accepts must survive being written again
// (what -resume does) and read back unchanged.
func FuzzParseResults(f *testing.F) {
	golden, err := os.ReadFile(filepath.Join("..", "reports", "testdata", "results.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden)
	f.Add([]byte(`{"manifest":{"name":"x","seeds":[18446744073709551615]},"runs":[{"model":"m","task":"t/v","seed":18446744073709551615,"config":{"lr":1e-8}}],` +
		`"results":[{"model":"m","task":"t/v","seed":18446744073709551615,"metric":"nll","value":"NaN","unit":""}],` +
		`"curves":[{"model":"m","task":"t/v","seed":18446744073709551615,"name":"train_loss","unit":"nats","steps":[1,2],"values":[1.5,"+Inf"]}],` +
		`"series":[{"model":"m","task":"t/v","seed":18446744073709551615,"name":"s","x_name":"p","unit":"","x":[1],"y":["-Inf"],"n":[3],"params":{"k":[1,"a"]}}]}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		rf, err := harness.ParseResults("results.json", b)
		if err != nil {
			if rf != nil || err.Error() == "" {
				t.Fatalf("results %v with error %q", rf, err)
			}
			return
		}
		again, err := json.Marshal(rf)
		if err != nil {
			t.Fatalf("an accepted file cannot be written again: %v", err)
		}
		rf2, err := harness.ParseResults("results.json", again)
		if err != nil {
			t.Fatalf("an accepted file, written again, is refused: %v\n%s", err, again)
		}
		third, err := json.Marshal(rf2)
		if err != nil || !bytes.Equal(third, again) {
			t.Fatalf("writing and reading again changed the file (%v):\n%s\n%s", err, again, third)
		}
	})
}
