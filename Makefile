# The suite's set-up and its two main jobs. Every target creates or reuses the project's virtual
# environment itself: it is rebuilt only when pyproject.toml changes.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROFILE ?= quick
PYTEST_ARGS ?=

.PHONY: venv test test-fast reproduce lab strip clean-cache help

help:
	@echo "make reproduce   run the notebook suite headless at PROFILE=$(PROFILE) into results/$(PROFILE)/"
	@echo "make test        run the test suite (installs .venv first when needed)"
	@echo "make test-fast   the tests not marked slow"
	@echo "make lab         open JupyterLab on notebooks/ with the project's kernel"
	@echo "make strip       strip outputs from notebooks/ (keeps cell tags)"

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name csnet --display-name "Python (csnet)" >/dev/null
	@touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

reproduce: $(STAMP)
	$(VENV)/bin/csnet suite run --profile $(PROFILE)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

strip: $(STAMP)
	$(VENV)/bin/csnet suite strip notebooks/*.ipynb

clean-cache:
	rm -rf .cache
