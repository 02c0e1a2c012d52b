# Shulian: make demo | make test | make bench | make proto | make standard
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench proto standard lint clean

$(STAMP): pyproject.toml setup.py node/_fastread.c node/_fastprep.c
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/shulian demo

test: $(STAMP)
	$(BIN)/shulian standard build --check
	$(BIN)/ruff check .
	$(BIN)/mypy --strict node adapters conformance
	$(BIN)/python -m pytest -q

# every benchmark runs and prints its JSON line; the target fails if any missed its ratio
bench: $(STAMP)
	@rc=0; for b in bench/*.py; do $(BIN)/python $$b || rc=1; done; exit $$rc

proto: $(STAMP)
	$(BIN)/python -m node.transport.grpc.protogen

standard: $(STAMP)
	$(BIN)/shulian standard build

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy --strict node adapters conformance

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache
