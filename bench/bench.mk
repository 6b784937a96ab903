# Throughput benchmarks (issue 5). Included by the top-level Makefile:
#
#	include bench/bench.mk
#	bench: bench-go bench-suite
#
# BENCH_OUT receives gobench.txt (Go benchmark format) next to the suite's
# bench.json, bench.md, bench.txt (benchstat format) and charts/.
BENCH_OUT ?= results/throughput
BENCH_CONFIG ?= experiments/throughput.yaml

.PHONY: bench-go bench-suite bench-s2s bench-images

# Go benchmarks: kernels (GFLOP/s), training steps, scoring and generation
# (tokens/s via b.ReportMetric). Compare two runs with benchstat.
bench-go:
	@mkdir -p $(BENCH_OUT)
	$(GO) test -tags '$(TAGS)' -run '^$$' -bench . -benchtime 3x ./... > $(BENCH_OUT)/gobench.txt; \
	  status=$$?; cat $(BENCH_OUT)/gobench.txt; exit $$status

# The default `arbench bench` suite: sweeps, latency percentiles, memory,
# FLOPs and the matmul ceiling; a few minutes on 2 cores.
bench-suite: build
	./$(BIN) bench -config $(BENCH_CONFIG) -out $(BENCH_OUT)

# Non-autoregressive, hybrid and autoregressive translation speed (issue 10):
# every decoding mode of experiments/nar-vs-ar.yaml's models at batch 1 and 64.
BENCH_S2S_OUT ?= results/nar-vs-ar-bench
bench-s2s: build
	./$(BIN) bench -config experiments/nar-vs-ar.yaml -out $(BENCH_S2S_OUT)

# Generation time vs image size (issue 11): experiments/images.yaml's models
# sample whole images pixel by pixel at each size, against one training step
# and one scoring pass per image (table and chart); about 1.5 minutes on 2 cores.
BENCH_IMAGES_OUT ?= results/images-bench
bench-images: build
	./$(BIN) bench -config experiments/images.yaml -out $(BENCH_IMAGES_OUT)

# arbench's Go transformer against its PyTorch twin through the external
# plugin protocol (issue 12), side by side with their ratio table.
BENCH_EXTERNAL_OUT ?= results/external-bench
bench-external: build python-deps
	./$(BIN) bench -config experiments/external.yaml -out $(BENCH_EXTERNAL_OUT)

# arbench against a current PyTorch on the same CPU (issue 13): the PyPI
# torch wheel (MKL, oneDNN; it pulls the CUDA libraries it links, about
# 5 GB, although only the CPU is used) in a virtual environment under
# .cache/peer, then experiments/peer.yaml (quick size) and
# experiments/peer-large.yaml, each arbench model next to its PyTorch twin
# of python/examples in one run (bench.md: "Against peers"), first on
# gorgonia, then the quick size again on the libtorch backend (gotch,
# libtorch $(TORCH_VERSION) of torch.mk). Not part of make test.
PEER_TORCH ?= 2.15.0
PEER_VENV  ?= .cache/peer
PEER_OUT   ?= $(BENCH_OUT)
PEER_STAMP := $(PEER_VENV)/.torch-$(PEER_TORCH)

.PHONY: peer-venv bench-peer bench-peer-gotch

peer-venv: $(PEER_STAMP)

$(PEER_STAMP):
	python3 -m venv $(PEER_VENV)
	$(PEER_VENV)/bin/pip install --quiet --disable-pip-version-check torch==$(PEER_TORCH) numpy
	$(PEER_VENV)/bin/python -c 'import torch; print("peer:", torch.__version__, torch.get_num_threads(), "threads")'
	touch $@

bench-peer: build peer-venv
	./$(BIN) bench -config experiments/peer.yaml -out $(PEER_OUT)/peer
	./$(BIN) bench -config experiments/peer-large.yaml -out $(PEER_OUT)/peer-large
	$(MAKE) bench-peer-gotch

GOTCH_BIN ?= bin/arbench-gotch

# OMP_WAIT_POLICY=passive: libtorch's OpenMP threads in arbench's process
# otherwise spin while the PyTorch plugin computes, and took most of the
# 2 cores from it (its training ran 35× slower).
bench-peer-gotch: torch peer-venv
	$(GOTCH_GO) build -tags 'gotch $(TAGS)' -o $(GOTCH_BIN) ./cmd/arbench
	OMP_WAIT_POLICY=passive ./$(GOTCH_BIN) bench -config experiments/peer.yaml -backend gotch -out $(PEER_OUT)/peer-gotch
