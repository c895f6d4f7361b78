# Brain AI Operator — developer entry points. `make demo` and `make test` are all a new machine needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BRAINAI_CACHE ?= $(HOME)/.cache/brain-ai
export BRAINAI_CACHE

.PHONY: help setup lint test test-unit e2e demo cluster-bins cluster-up cluster-down bench crds images test-images e2e-kind kind-config clean

help: ## list targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

setup: $(VENV)/.installed ## create .venv/ with the project (editable) and test dependencies

lint: setup ## ruff
	$(BIN)/ruff check engine operator tests e2e

cluster-bins: ## build (or reuse) the pinned control-plane binaries
	@e2e/cluster/build.sh

cluster-up: cluster-bins ## start the local cluster; prints export lines for eval
	@e2e/cluster/up.sh

cluster-down: ## stop the local cluster and every process it started
	@e2e/cluster/down.sh

test: setup cluster-bins lint ## every test: unit, engine integration, cluster e2e
	$(BIN)/pytest

test-unit: setup ## tests that need no cluster
	$(BIN)/pytest tests

e2e: setup cluster-bins ## the end-to-end suite on the local cluster (or the reachable KUBECONFIG)
	$(BIN)/pytest e2e

images: setup ## build brain-ai/engine and brain-ai/operator offline (Docker, debootstrap base, host wheelhouse)
	@e2e/images/build.sh

test-images: setup ## build the images (cached) and run them: health, read-only root, uid 10001, CLI
	$(BIN)/pytest -m images e2e/test_images.py

kind-config: cluster-bins ## validate e2e/kind/kind-config.yaml with kind's own config loader
	@e2e/kind/check-config.sh >/dev/null && echo "e2e/kind/kind-config.yaml: valid"

e2e-kind: setup cluster-bins ## the e2e suite and examples on a kind cluster (needs Docker + kindest/node)
	@e2e/kind/run.sh

demo: setup ## the engine on SQLite answering learn/search, then the operator on a local cluster
	@e2e/demo.sh

bench: setup ## engine benchmark (quick)
	$(BIN)/brain-ai-engine bench --quick --json

crds: setup ## regenerate the CRD (crds/ and the chart's copy) from operator/brainai_operator/api.py
	$(BIN)/brain-ai-operator crd > crds/brainai.io_brainaiclusters.yaml
	cp crds/brainai.io_brainaiclusters.yaml charts/brain-ai-operator/crds/

clean: ## remove the virtualenv and local state (keeps the binary cache)
	rm -rf $(VENV) .pytest_cache .ruff_cache
