# Two commands on a fresh machine: `make demo` and `make test`.
# The environment (.venv) is created from uv.lock when missing; uv itself is
# bootstrapped with pip when it is not on PATH.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
RUN := $(VENV)/bin/python

.PHONY: demo test test-fast bench bench-quick lint format env clean

$(UV):
	@echo ">> uv not found: installing it with pip (user site)"
	$(PYTHON) -m pip install --user --quiet uv

# --compile-bytecode: every Ray worker and CLI process imports jax/xarray/ray from
# .pyc instead of re-compiling their sources (this machine sets PYTHONDONTWRITEBYTECODE,
# so nothing would ever be cached): `import jax` 2.1 s -> 0.9 s on one core.
$(VENV)/.synced: pyproject.toml uv.lock Makefile | $(UV)
	@echo ">> creating/updating $(VENV) from uv.lock"
	UV_PYTHON=$(PYTHON) $(UV) sync --frozen --compile-bytecode --python $(PYTHON)
	@touch $@

env: $(VENV)/.synced

demo: env
	$(VENV)/bin/farm run sweep=default

# CI runs everything (slow S3/kill and two-node cluster tests included, ~10 min here);
# plain `pytest` / `make test-fast` skips the slow and cluster tests (~4 min).
test: env
	$(RUN) -m pytest -q -m ""

test-fast: env
	$(RUN) -m pytest -q

bench: env
	$(RUN) -m benchmarks.run

bench-quick: env
	$(RUN) -m benchmarks.run --quick

lint: env
	$(VENV)/bin/ruff check .

format: env
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
