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

# The main job on real held-out scans with the shipped default model (kspace-x2); results in demo-output/.
# Debian's mricron-data adds a held-out adult brain (Colin27) where apt-get can install it; without it the
# demo runs on the held-out scans that nibabel and pydicom ship.
demo: $(STAMP)
	-PYTHON=$(BIN)/python bash scripts/data/install_sources.sh > /dev/null 2>&1
	$(BIN)/mrisr demo --out demo-output --force

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
