# The two commands of the README. Both create .venv when missing and install artlens into it.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.artlens-installed
PORT   ?= 8000

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[all,dev]'
	@touch $(STAMP)

# Build the demo (plates counted and matched, a hidden-layer scene compared) into its own catalog, then
# serve it at http://127.0.0.1:$(PORT) until Ctrl-C. `artlens demo --out DIR` alone builds without serving.
demo: $(STAMP)
	rm -f demo-output/artlens.db demo-output/artlens.db-wal demo-output/artlens.db-shm
	$(BIN)/artlens demo --out demo-output --catalog demo-output/artlens.db
	@echo ""
	@echo "artlens demo: open http://127.0.0.1:$(PORT) in a browser (Ctrl-C stops the server)"
	$(BIN)/artlens serve --catalog demo-output/artlens.db --port $(PORT)

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_spectral_accuracy.py
	$(BIN)/python benchmarks/bench_spectral_speed.py

clean:
	rm -rf demo-output .pytest_cache build src/*.egg-info
