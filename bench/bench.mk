# Throughput benchmarks (issue 5). Included by the top-level Makefile:
#
#	include bench/bench.mk
#	bench: bench-go bench-suite
#
# BENCH_OUT receives gobench.txt (Go benchmark format) next to the suite's
# bench.json, bench.md, bench.txt (benchstat format) and charts/.
BENCH_OUT ?= results/throughput
BENCH_CONFIG ?= experiments/throughput.yaml

.PHONY: bench-go bench-suite

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
