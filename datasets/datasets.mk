# datasets.mk: fetch, verify and cache arbench's built-in corpora.
# Included by the top-level Makefile.
#
#   make datasets                       # fetch every built-in corpus into $(ARBENCH_DATA) or ./data
#   make datasets DATASETS=jargon       # only some
#
# Built-in corpora come from Debian packages (apt-get download); when apt has
# no candidate for one of them the package lists are refreshed first.
# DATASETS_FETCH is the command that fetches; `go run ./cmd/arbench fetch`
# performs the same operation (both call datasets.Fetch).

DATASETS ?= jargon
DATASETS_APT_PACKAGES ?= jargon-text
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
