# Two entry points for a fresh machine: `make demo` (the main job) and `make test` (what CI runs).
# Each builds the virtualenv first: torch (CPU build) before anything that depends on it,
# then lmrec with the extras the demo and the tests use.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.lmrec-installed
TORCH  ?= torch==2.13.0
EXTRAS ?= torch,lm,ann,tune,serve,spark,bench,dev

.PHONY: demo test test-all bench setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "$(TORCH)"
	$(PIP) install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/lmrec demo

test: $(STAMP)
	$(PY) -m pytest -q -m "not slow" --durations=10 --doctest-modules tests src/lmrec

test-all: $(STAMP)
	$(PY) -m pytest -q tests

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
