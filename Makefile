# Two entry points for a fresh machine: `make demo` (the main job) and `make test` (what CI runs).
# Each builds the virtualenv first: torch (CPU build) before anything that depends on it,
# then lmrec with the extras the demo and the tests use.
#
# Which torch: tools/torch_index.py asks pip which build it would install. A local build
# (a --find-links directory or file:// index in pip's configuration) is kept; where pip
# would fetch PyPI's CUDA build (Linux), the CPU build comes from PyTorch's CPU index.
# Override: make setup TORCH=torch==2.6.0 TORCH_INDEX=https://download.pytorch.org/whl/cu126
# (any index URL), or TORCH_INDEX=pypi for pip's configured indexes as they are.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.lmrec-installed
TORCH  ?= torch==2.13.0
TORCH_INDEX ?=
EXTRAS ?= torch,lm,ann,fast,onnx,tune,serve,spark,bench,privacy,dev
# The checkers run from a virtualenv of their own: the privacy extra's Flower pins an
# older pathspec than mypy needs. mypy reads lmrec's dependencies from $(VENV).
TOOLS  ?= .venv-tools
TOOLS_STAMP := $(TOOLS)/.lmrec-tools
LINT_TOOLS ?= mypy==2.4.1 ruff==0.17.6
# mypy reads third-party types from the environment it checks ($(VENV)), not from its own:
# the stub packages go into $(VENV), or the check differs between machines.
TYPE_STUBS ?= pandas-stubs==3.1.0.261029 scipy-stubs==1.17.1.5
STUBS_STAMP := $(VENV)/.lmrec-stubs

.PHONY: demo test test-all bench setup clean java postgres chromium lint

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	args=$$($(PY) tools/torch_index.py "$(TORCH)" "$(TORCH_INDEX)") && \
	  $(PIP) install --quiet "$(TORCH)" $$args
	$(PIP) install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

$(TOOLS_STAMP): Makefile
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet $(LINT_TOOLS)
	touch $(TOOLS_STAMP)

$(STUBS_STAMP): $(STAMP) Makefile
	$(PIP) install --quiet $(TYPE_STUBS)
	touch $(STUBS_STAMP)

# Style, lint and types (the code is checked, not only its behaviour): ruff's rules and
# format, and mypy on src/ (its settings, and the modules still exempt, in pyproject.toml).
lint: $(STAMP) $(TOOLS_STAMP) $(STUBS_STAMP)
	$(TOOLS)/bin/ruff check src tests benchmarks tools
	$(TOOLS)/bin/ruff format --check src tests benchmarks tools
	$(TOOLS)/bin/mypy --python-executable $(PY)

demo: $(STAMP)
	$(VENV)/bin/lmrec demo

# The Spark tests need a Java runtime; they skip without one, so CI (CI=true) installs it.
java:
	@if [ "$$CI" = "true" ] && [ -z "$$JAVA_HOME" ] && ! command -v java >/dev/null 2>&1; then \
	  echo "CI: installing a Java runtime (openjdk-17-jre-headless) for the Spark tests"; \
	  apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless >/dev/null \
	  || echo "WARNING: could not install Java; the Spark tests will be skipped"; \
	fi

# The event-store tests run on SQLite and on a throwaway PostgreSQL server (initdb + pg_ctl
# in a temp dir); they skip the PostgreSQL half without it, except in CI, which installs it.
postgres:
	@if [ "$$CI" = "true" ] && ! command -v initdb >/dev/null 2>&1 \
	    && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  echo "CI: installing PostgreSQL (postgresql) for the event-store tests"; \
	  apt-get update -qq && apt-get install -y -qq postgresql >/dev/null \
	  || echo "WARNING: could not install PostgreSQL; the event-store tests on it will fail"; \
	fi

# The browser tests (report, /ui) drive Debian's Chromium through Playwright; they skip
# without it, so CI (CI=true) installs it, and there they fail instead of skipping.
chromium:
	@if [ "$$CI" = "true" ] && ! command -v chromium >/dev/null 2>&1; then \
	  echo "CI: installing Chromium (chromium, chromium-driver) for the browser tests"; \
	  apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null \
	  || echo "WARNING: could not install Chromium; the browser tests will fail in CI"; \
	fi

# `make test` leaves out the tests marked slow; `make test-all` is the same run with them.
PYTEST := $(PY) -m pytest -q --durations=10 --doctest-modules tests src/lmrec

test: $(STAMP) lint java postgres chromium
	$(PYTEST) -m "not slow"

test-all: $(STAMP) java postgres chromium
	$(PYTEST)

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .hypothesis
