# The two set-up commands of the README: `make test` and `make demo`. Each builds .venv by itself.
# `make test-fast` skips the end-to-end tests marked slow (a quick check while working).
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PIP_QUIET := 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }

.PHONY: venv test test-fast demo lint clean

# No byte-compiling at install (pip's --no-compile, uv's default): compiling every installed module is a large share
# of the install time. Python compiles what it imports on first use and caches it in the venv (the install imports
# the main modules once).
# PYTHONDONTWRITEBYTECODE is dropped for that cache: with it set (as some containers do), every process, and every
# measurement worker the server spawns, would compile torch's modules afresh.
unexport PYTHONDONTWRITEBYTECODE

# uv installs the same pinned set as pip in about half the time (time that counts against the demo's 15 minutes);
# where uv cannot be had or fails (an index only pip is configured for), pip.
INSTALL_ARGS := -c constraints.txt -e '.[dev]'

$(STAMP): pyproject.toml setup.py constraints.txt
	@echo "==> creating $(VENV) from pyproject.toml + constraints.txt (first time: a few minutes)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@if $(PY) -m pip install -q --progress-bar off uv $(PIP_QUIET) && \
	    $(VENV)/bin/uv pip install -q --python $(PY) $(INSTALL_ARGS); then :; \
	else \
	    echo "==> uv could not install the packages: pip instead"; \
	    $(PY) -m pip install -q --progress-bar off --no-compile $(INSTALL_ARGS) $(PIP_QUIET); \
	fi
	@echo "==> compiling the modules both sides import (once, about 20 s)"
	@$(PY) -c "import torch, torchvision, timm, onnxruntime, onnx, scipy.stats, fastapi, sqlalchemy, alembic, \
	    latency_server.app, latency_server.worker.measuring_loop, nas.cli"
	@touch $(STAMP)

venv: $(STAMP)

test: venv
	$(PY) -m pytest -q --timeout 900

# two processes: the fast tests are mostly imports and worker start-ups, which overlap well on 2 cores; the whole
# suite stays in one process, where its live servers measure without a neighbour.
test-fast: venv
	$(PY) -m pytest -q --timeout 900 -m "not slow" -n 2

demo: venv
	$(PY) -m nas demo

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache

clean:
	rm -rf $(VENV) outputs .pytest_cache .ruff_cache

# Container images of both sides (Docker where its daemon runs, else buildah; see scripts/build_images.sh), and the
# check that starts them (scripts/check_images.sh, writes bench/results/images/).
images:
	scripts/build_images.sh
.PHONY: images
