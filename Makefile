# Two entry points a new user needs: `make demo` (install + run the main job offline)
# and `make test` (install + lint + type-check + tests). Both build their own .venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP_DEV := $(VENV)/.stamp-dev

.PHONY: test test-local lint typecheck pytest demo install-dev system-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP_DEV): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install-dev: $(STAMP_DEV)

# Chromium and a JRE for the tests that drive a real browser and a real Spark (as root, with
# apt-get; otherwise those tests skip and say what to install).
system-deps:
	bash scripts/install-system.sh

lint: $(STAMP_DEV)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP_DEV)
	$(BIN)/mypy

pytest: $(STAMP_DEV) system-deps
	$(BIN)/pytest -q

test: lint typecheck pytest

# The real local model (one notebook, one dimension, plus the embedder): proves the offline
# install path. JUDGEALIGN_LOCAL_MODELS=fast installs only the small model the tests use.
test-local: $(STAMP_DEV)
	JUDGEALIGN_LOCAL_MODELS="$${JUDGEALIGN_LOCAL_MODELS:-fast}" bash scripts/install-local.sh $(VENV)
	$(BIN)/pytest -q -m local_model

demo:
	bash scripts/demo.sh $(DEMO_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
