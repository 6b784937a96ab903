# python.mk: the Python plugin SDK (python/arbench_plugin) and its tests.
# Included by the top-level Makefile; see python/README.md.
#
#   make test-python                  # the SDK's unit tests and the testdata plugins'
#   make test-python PYTHON=python3.9 # with another interpreter (3.9 or later)
#
# Standard library only: nothing is installed. PYTHONDONTWRITEBYTECODE keeps
# __pycache__ folders out of the work tree.

PYTHON ?= python3

.PHONY: test-python

test-python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { \
	  echo "test-python: '$(PYTHON)' not found: install Python 3.9 or later, or set PYTHON=/path/to/python3" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 9))' || { \
	  echo "test-python: $$($(PYTHON) --version 2>&1) is too old: the SDK needs Python 3.9 or later (set PYTHON=...)" >&2; exit 1; }
	PYTHONDONTWRITEBYTECODE=1 $(PYTHON) -m unittest discover -s python/tests -t python
