# Two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.mrisr-installed

.PHONY: demo test lint typecheck clean

# torch is installed first and pinned so that no later step pulls a different (CUDA) build;
# pyproject.toml keeps lower bounds only so GPU users bring their own torch.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev,data]'
	touch $(STAMP)

demo: $(STAMP)
	bash scripts/demo.sh

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) demo-output

# Real MRI sources that do not come from PyPI (Debian mricron-data, insighttoolkit5-examples), then the list of every source found.
# Build the training set afterwards with: $(BIN)/python scripts/data/build_training_set.py data/training
.PHONY: data
data: $(STAMP)
	PYTHON=$(BIN)/python bash scripts/data/install_sources.sh
