# Brain AI Operator — developer entry points. `make demo` and `make test` are all a new machine needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BRAINAI_CACHE ?= $(HOME)/.cache/brain-ai
export BRAINAI_CACHE

.PHONY: help deps setup lint test test-unit e2e demo cluster-bins cluster-up cluster-down bench bench-strategies bench-operator loadtest crds images test-images \
	kind-bins kind-up kind-down e2e-kind clean

help: ## list targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml common/pyproject.toml engine/pyproject.toml operator/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ./common -e './engine[tools,bench]' -e ./operator --group test
	@touch $@

deps: ## install the Debian packages the tests and the clusters need (PostgreSQL, Redis, Prometheus, docker.io, ...)
	@e2e/install-deps.sh

setup: $(VENV)/.installed ## create .venv/ with the three distributions (editable) and the test tools

lint: setup ## ruff (lint and format) on everything, mypy on common/, engine/ and operator/
	$(BIN)/ruff check common engine operator tests e2e
	$(BIN)/ruff format --check common engine operator tests e2e
	$(BIN)/mypy

cluster-bins: ## build (or reuse) the pinned control-plane binaries
	@e2e/cluster/build.sh

cluster-up: cluster-bins ## start the local cluster; prints export lines for eval
	@e2e/cluster/up.sh

cluster-down: ## stop the local cluster and every process it started
	@e2e/cluster/down.sh

test: deps setup lint ## every test: unit, engine integration, e2e on kwok, then e2e on kind (real pods)
	@e2e/test.sh

test-unit: setup ## tests that need no cluster
	$(BIN)/pytest tests

e2e: setup cluster-bins ## the end-to-end suite on the kwok cluster (or the reachable KUBECONFIG)
	$(BIN)/pytest e2e

images: setup ## build brain-ai/engine and brain-ai/operator offline (Docker, debootstrap base, host wheelhouse)
	@e2e/images/build.sh

test-images: setup ## build the images (cached) and run them: health, read-only root, uid 10001, CLI
	$(BIN)/pytest -m images e2e/test_images.py

kind-bins: ## build (or reuse) the pinned control-plane and node binaries
	@e2e/cluster/build.sh node

kind-up: setup kind-bins ## start the kind cluster with real pods (node image and images built offline); prints exports
	@e2e/kind/up.sh

kind-down: ## delete the kind cluster and stop the project's Docker daemon
	@e2e/kind/down.sh

e2e-kind: setup kind-bins ## the end-to-end suite on the kind cluster: real pods, the project's images
	BRAINAI_E2E_TIER=kind $(BIN)/pytest e2e -m "not images" --durations=20

demo: deps setup ## the engine on SQLite answering learn/search, then operator-made engine pods on kind (else kwok)
	@e2e/demo.sh

bench: setup ## engine benchmark (quick), beside SQLite FTS5 and tantivy
	$(BIN)/brain-ai-engine bench --quick --json

bench-operator: setup cluster-bins ## one operator and a fleet on its own kwok cluster (BENCH_ARGS="--clusters 200 --data-tier")
	$(BIN)/python -m e2e.bench.fleet $(BENCH_ARGS)

bench-strategies: setup ## the three workload strategies' engines on the same corpus: learning speed, repeated queries
	$(BIN)/python -m e2e.bench.strategies $(BENCH_ARGS)

loadtest: deps setup ## the scaling guide's Artillery scenario: one engine, then two on PostgreSQL + Redis (LOADTEST_ARGS=--short: 40 s each)
	$(BIN)/python -m e2e.load.local $(LOADTEST_ARGS)

crds: setup ## regenerate the CRD (crds/ and the chart's copy) from operator/brainai_operator/api.py
	$(BIN)/brain-ai-operator crd > crds/brainai.io_brainaiclusters.yaml
	cp crds/brainai.io_brainaiclusters.yaml charts/brain-ai-operator/crds/

clean: ## remove the virtualenv and local state (keeps the binary cache)
	rm -rf $(VENV) .pytest_cache .ruff_cache
