# arbench — see README.md. Quick start: `make run`, `make test`.
GO      ?= go
BIN     := bin/arbench
TAGS    ?=
# Go test timeout for `make test`; CI allows 90 minutes, we aim for < 10.
TEST_TIMEOUT ?= 9m

.PHONY: all build run test fuzz bench datasets lint openblas clean python-deps test-examples claims-readme

all: build

build:
	$(GO) build -tags '$(TAGS)' -o $(BIN) ./cmd/arbench

include datasets/datasets.mk
include reports/reports.mk
include torch.mk
include bench/bench.mk
include python/python.mk
include slurm.mk

# Fetch the corpora, train the quick suite (rnn, lstm, transformer on jargon)
# on the CPU, print the table and write results/quick/{results.json,report.md}
# (-overwrite: running it again replaces the previous results).
run: datasets build
	./$(BIN) run -config experiments/quick.yaml -overwrite

# Every test. The corpus is fetched first because the end-to-end tests run
# the real CLI on it; Chromium renders report.html in the browser test.
test: datasets chromium lint python-deps
	ARBENCH_TORCH_PYTHON=$(TORCH_PYTHON) $(GO) test -tags '$(TAGS)' -timeout $(TEST_TIMEOUT) ./...
	$(MAKE) test-python test-examples
	$(MAKE) fuzz

# Python for the out-of-process plugins: python3 (the SDK and the test
# plugins, standard library only) and Debian's CPU PyTorch for the example
# plugins (python/examples), installed with apt-get when missing.
# TORCH_PYTHON is the interpreter that has torch (Debian's python3-torch
# installs into /usr/bin/python3); the Go tests of the examples use it.
TORCH_PYTHON ?= /usr/bin/python3
APT_GET ?= $(if $(filter 0,$(shell id -u 2>/dev/null)),apt-get,sudo apt-get)
# The PyTorch example plugins' own tests (python/examples, ~20 s).
test-examples: python-deps
	PYTHONDONTWRITEBYTECODE=1 $(TORCH_PYTHON) -m unittest discover -s python/examples -p 'test_*.py'

python-deps:
	@command -v python3 >/dev/null 2>&1 || { $(APT_GET) update && DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y python3; }
	@$(TORCH_PYTHON) -c 'import torch' 2>/dev/null || { \
		echo "python-deps: installing Debian's python3-torch (CPU PyTorch for python/examples)"; \
		$(APT_GET) update && DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y python3-torch; }

# Every parser of outside input, fuzzed for FUZZTIME each (seeded with the
# repository's real files; a crasher found is kept under testdata/fuzz and
# then runs in every plain `go test`). -fuzzminimizetime keeps a worker from
# spending the budget on minimising. The budget is a count of executions,
# not a duration: with a duration, Go before 1.27 can fail a target with a
# bare "context deadline exceeded" when the deadline races a worker
# (golang/go#75804; seen here on go1.26.8). 30000 runs take 2-3 s for the
# fast parsers and about 12 s for safetensors on 2 cores.
FUZZTIME ?= 30000x
FUZZ_FLAGS = -run '^$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s
fuzz:
	$(GO) test $(FUZZ_FLAGS) -fuzz '^FuzzParseExperiment$$' ./harness
	$(GO) test $(FUZZ_FLAGS) -fuzz '^FuzzParseResults$$' ./harness
	$(GO) test $(FUZZ_FLAGS) -fuzz '^FuzzParseSamples$$' ./harness
	$(GO) test $(FUZZ_FLAGS) -fuzz '^FuzzParseShard$$' ./harness
	$(GO) test $(FUZZ_FLAGS) -fuzz '^FuzzReadSafetensors$$' ./nn
	$(GO) test $(FUZZ_FLAGS) -fuzz '^FuzzReadIDX$$' ./datasets
	$(GO) test $(FUZZ_FLAGS) -fuzz '^FuzzParseContentRange$$' ./datasets
	$(GO) test $(FUZZ_FLAGS) -fuzz '^FuzzExtractArchive$$' ./datasets

# Go benchmarks (tokens/s via b.ReportMetric), the default `arbench bench`
# suite (experiments/throughput.yaml) into results/throughput/ and the
# translation suite (experiments/nar-vs-ar.yaml) into
# results/nar-vs-ar-bench/ (about a minute). Long
# measurements live here, never in tests.
bench: datasets bench-go bench-suite bench-s2s bench-images bench-external bench-peer

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	CGO_ENABLED=0 $(GO) build ./...

# OpenBLAS through gonum's netlib: installs libopenblas-dev, builds with the
# `openblas` tag. Use TAGS=openblas with the other targets afterwards.
openblas:
	@dpkg -s libopenblas-dev >/dev/null 2>&1 || { apt-get update && apt-get install -y libopenblas-dev; }
	$(MAKE) build TAGS=openblas

clean:
	rm -rf bin

# Copy the Claims tables of finished runs (results/NAME/claims.json, written
# by arbench run/report) to experiments/results/NAME.claims.json and rewrite
# the README's quoted tables from them (experiments/readme_test.go checks
# in every `make test` that the README and those files agree).
claims-readme:
	@set -e; for f in results/*/claims.json; do \
	  name=$$(basename $$(dirname $$f)); cp $$f experiments/results/$$name.claims.json; echo "experiments/results/$$name.claims.json"; \
	done
	$(GO) test ./experiments -run '^TestREADMEClaims$$' -update
