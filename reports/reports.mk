# reports.mk: what the reports need beyond Go. Included by the top-level
# Makefile.
#
#   make chromium        # install Debian's chromium when no Chromium/Chrome
#                        # is on PATH (the browser test of report.html,
#                        # TestHTMLInChromium, skips without one)
#   make test-reports    # chromium, then the reports tests
#   make report REPORT_DIR=results/quick   # re-render a results directory
#
# The `test` target should depend on `chromium` so that the browser test
# runs: chromium is installed only when missing (apt-get update first when
# apt has no candidate), with sudo when not root.

REPORTS_APT_GET ?= $(if $(filter 0,$(shell id -u 2>/dev/null)),apt-get,sudo apt-get)
REPORTS_CHROMIUM := $(firstword $(shell command -v chromium chromium-browser google-chrome google-chrome-stable 2>/dev/null))
REPORT_DIR ?= results/quick

.PHONY: chromium test-reports report

chromium:
ifeq ($(REPORTS_CHROMIUM),)
	@if ! apt-cache policy chromium 2>/dev/null | grep -q 'Candidate: [^(]'; then \
		echo "reports: apt has no candidate for chromium; running apt-get update"; \
		$(REPORTS_APT_GET) update || exit 1; \
	fi
	DEBIAN_FRONTEND=noninteractive $(REPORTS_APT_GET) install -y chromium
else
	@echo "reports: using $(REPORTS_CHROMIUM)"
endif

test-reports: chromium
	$(GO) test -tags '$(TAGS)' ./reports/

report: build
	./$(BIN) report $(REPORT_DIR)
