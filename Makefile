# The README's commands. Each target builds its own virtual environment from the lock file.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
STAMP := $(VENV)/.installed

# Python caches each module's bytecode the first time any process imports it, so only what runs
# is compiled, once (compiling every installed package at install took about 70 CPU-s, most of it
# for modules nothing here imports). A PYTHONDONTWRITEBYTECODE in the caller's environment would
# make every kfp.local step, server and Ray worker compile its imports again at each start.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: venv demo test test-image compile lint format bench bench-quick bench-robustness bench-coverage lock locks base-image image clean

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check "uv>=0.4"
	$(UV) pip install --python $(BIN)/python --quiet --require-hashes -r requirements.lock
	$(UV) pip install --python $(BIN)/python --quiet --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

DEMO_STAMP := $(shell date -u +%Y%m%dT%H%M%SZ)
DEMO_OUT ?= runs/demo-$(DEMO_STAMP)

# The demo's CV repeats 5-fold CV 3 times (15 outer folds; `assay train` defaults to 5 repeats,
# 25 folds): the same protocol and report, with wider intervals, in about 60% of the CV's time.
DEMO_REPEATS ?= 3

demo: $(STAMP)  ## train the classifier through kfp.local on WDBC, then run the bias study on the simulated LLM endpoint
	$(BIN)/assay train --repeats $(DEMO_REPEATS) --out $(DEMO_OUT)/classifier
	$(BIN)/assay bias-study --out $(DEMO_OUT)/bias-study
	@echo "Reports: $(DEMO_OUT)/classifier/report.html and $(DEMO_OUT)/bias-study/report.html"

# Test processes side by side (pytest-xdist): most tests wait on servers, Ray or rate windows,
# so 4 workers keep 2 cores busy. tests/_scheduling.py says which tests share a worker.
TEST_WORKERS ?= 4

# The container tests (marker `container`: the images, both pipelines under the docker runner, the
# manifests' pods) need `make image` first and run in `make test-image`; with
# ASSAY_REQUIRE_CONTAINERS=1 (CI's .ci/run) `make test` runs them too, and fails without images.
CONTAINER_SELECTION := $(if $(filter 1,$(ASSAY_REQUIRE_CONTAINERS)),,-m "not container")

test: $(STAMP)  ## the whole test suite (the container tests only with ASSAY_REQUIRE_CONTAINERS=1)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) $(CONTAINER_SELECTION)

test-image: $(STAMP)  ## the container tests only (after `make image`): the images, pipelines and servers in podman/docker
	$(BIN)/python -m pytest -m container

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
	$(BIN)/python benchmarks/abuse_bench.py
	$(BIN)/python benchmarks/bayes_bench.py

bench-robustness: $(STAMP)  ## 20 Bayesian fits per design cell (interval, binary, ordinal): divergences, R-hat, ESS (over an hour)
	$(BIN)/python benchmarks/bayes_robustness.py --out build/bayes_robustness.jsonl

bench-coverage: $(STAMP)  ## coverage / SBC of the interval model: 100 replicates x 5 variants (28 minutes on a shared 2-core machine)
	$(BIN)/python benchmarks/bayes_coverage.py --out build/bayes_coverage.jsonl

bench-quick: $(STAMP)  ## shorter versions of the benchmarks (a few minutes)
	$(BIN)/python benchmarks/train_bench.py --quick
	$(BIN)/python benchmarks/serve_bench.py --seconds 3
	$(BIN)/python benchmarks/llm_bench.py --quick

lock: $(STAMP)  ## re-resolve requirements.lock from pyproject.toml (every extra, with hashes; existing pins are kept unless pyproject needs others)
	$(UV) pip compile --quiet pyproject.toml --all-extras --python-version 3.11 --python-platform x86_64-unknown-linux-gnu --generate-hashes --custom-compile-command "make lock" -o requirements.lock

LOCK_TARGET := --python-version 3.11 --python-platform x86_64-unknown-linux-gnu --generate-hashes --custom-compile-command "make locks"

locks: $(STAMP)  ## re-resolve the images' locks (hashes, at requirements.lock's versions): no dev, test, lint or bench packages
	$(UV) pip compile --quiet pyproject.toml --extra serve --extra llm --extra bayes -c requirements.lock $(LOCK_TARGET) -o images/locks/pipeline.lock
	$(UV) pip compile --quiet images/locks/classifier.in -c requirements.lock $(LOCK_TARGET) -o images/locks/classifier.lock
	$(UV) pip compile --quiet images/locks/build-tools.in $(LOCK_TARGET) -o images/locks/build-tools.lock

# Container images. ENGINE: podman when present, else docker. BASE: auto (the public python:3.11
# slim image when it can be pulled, else the offline Debian base), public, local, or an image ref.
ENGINE ?= $(shell command -v podman >/dev/null 2>&1 && echo podman || echo docker)
BASE ?= auto
LOCAL_BASE ?= localhost/assay-python:3.11-bookworm

base-image:  ## the offline Python base (Debian packages via mmdebstrap), for machines that cannot pull one
	ENGINE=$(ENGINE) images/build-base.sh $(LOCAL_BASE)

image:  ## build ghcr.io/assay-ml/assay (pipelines, KubeRay, bias scorer) and assay-classifier (classifier server)
	ENGINE=$(ENGINE) BASE=$(BASE) LOCAL_BASE=$(LOCAL_BASE) images/build.sh

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
