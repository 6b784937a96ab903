# torch.mk: the libtorch backend (nn/gotch) through github.com/sugarme/gotch.
# Included by the top-level Makefile; see nn/gotch/README.md.
#
#   make torch            # install libtorch 2.1.2 from the PyPI wheel into
#                         # .cache/libtorch, prepare .cache/gotch and compile
#                         # gotch's C++ layer once (cached by Go afterwards)
#   make test-gotch       # the gotch tests: conformance with gorgonia, leak test
#   make build-gotch      # bin/arbench with the gotch backend linked in
#   make torch TORCH_CUDA=1   # also link libtorch_cuda (for GPU machines);
#                             # downloads every nvidia-*-cu12 wheel (~2.5 GB)
#
# Nothing here touches the Go module cache: gotch's libtch/lib.go hard-codes
# CUDA link flags, so scripts/torch-install.sh makes a build-local copy of
# gotch in .cache/gotch/gotch with its own lib.go and a go.work file that
# replaces the module with it. Every gotch build runs with
# GOWORK=$(GOTCH_WORK); plain builds never see it (all of nn/gotch carries the
# `gotch` build tag).

TORCH_VERSION ?= 2.1.2
TORCH_CUDA    ?= 0
GOTCH_WORK    := $(CURDIR)/.cache/gotch/go.work
GOTCH_GO      := GOWORK=$(GOTCH_WORK) $(GO)
# OMP_NUM_THREADS caps libtorch's intra-op threads (default: all cores).
GOTCH_TEST_TIMEOUT ?= 10m

.PHONY: torch test-gotch build-gotch bench-gotch

torch:
	TORCH_VERSION=$(TORCH_VERSION) TORCH_CUDA=$(TORCH_CUDA) scripts/torch-install.sh
	GOWORK=$(GOTCH_WORK) nice -n 10 $(GO) build -tags gotch ./nn/gotch/

test-gotch: torch
	$(GOTCH_GO) test -tags gotch -count=1 -timeout $(GOTCH_TEST_TIMEOUT) ./nn/gotch/...

build-gotch: torch
	$(GOTCH_GO) build -tags 'gotch $(TAGS)' -o $(BIN) ./cmd/arbench

# Training throughput of every plugin on gorgonia and gotch side by side.
bench-gotch: torch
	$(GOTCH_GO) test -tags gotch -run '^$$' -bench . -benchtime 20x ./nn/gotch/
