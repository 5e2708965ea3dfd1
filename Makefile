# The README's commands. Each target builds its own virtual environment from the lock file.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
STAMP := $(VENV)/.installed

.PHONY: venv demo test compile lint format bench bench-quick bench-robustness bench-coverage lock clean

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check "uv>=0.4"
	$(UV) pip install --python $(BIN)/python --quiet --compile-bytecode -r requirements.lock
	$(UV) pip install --python $(BIN)/python --quiet --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

DEMO_STAMP := $(shell date -u +%Y%m%dT%H%M%SZ)
DEMO_OUT ?= runs/demo-$(DEMO_STAMP)

demo: $(STAMP)  ## train the classifier through kfp.local on WDBC, then run the bias study on the simulated LLM endpoint
	$(BIN)/python -m compileall -q src pipelines components serving > /dev/null  # bytecode for every step's process
	$(BIN)/assay train --out $(DEMO_OUT)/classifier
	$(BIN)/assay bias-study --out $(DEMO_OUT)/bias-study
	@echo "Reports: $(DEMO_OUT)/classifier/report.html and $(DEMO_OUT)/bias-study/report.html"

test: $(STAMP)  ## the whole test suite
	$(BIN)/python -m compileall -q src pipelines components serving > /dev/null  # bytecode for every server and step process the tests start
	$(BIN)/python -m pytest

compile: $(STAMP)  ## compile every pipeline to IR YAML under build/pipelines
	$(BIN)/assay compile --out build/pipelines

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)  ## every benchmark, each printing its ratios from one run (over an hour: bayes_bench alone runs the baseline for about 10 minutes and the per-passage binary/ordinal fits up to 10 minutes each)
	$(BIN)/python benchmarks/train_bench.py
	$(BIN)/python benchmarks/serve_bench.py
	$(BIN)/python benchmarks/llm_bench.py
	$(BIN)/python benchmarks/bayes_bench.py

bench-robustness: $(STAMP)  ## 20 Bayesian fits per design cell (interval, binary, ordinal): divergences, R-hat, ESS (over an hour)
	$(BIN)/python benchmarks/bayes_robustness.py --out build/bayes_robustness.jsonl

bench-coverage: $(STAMP)  ## coverage / SBC of the interval model: 100 replicates x 5 variants (28 minutes on a shared 2-core machine)
	$(BIN)/python benchmarks/bayes_coverage.py --out build/bayes_coverage.jsonl

bench-quick: $(STAMP)  ## shorter versions of the benchmarks (a few minutes)
	$(BIN)/python benchmarks/train_bench.py --quick
	$(BIN)/python benchmarks/serve_bench.py --seconds 3
	$(BIN)/python benchmarks/llm_bench.py --quick

lock:  ## re-resolve requirements.lock from pyproject.toml
	uv pip compile pyproject.toml --all-extras --python-version 3.11 --python-platform x86_64-unknown-linux-gnu -o requirements.lock

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
