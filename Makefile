# Set-up and the two everyday commands. Each target creates .venv when it is missing or stale.
#   make demo   a real tuning run: an MLP on scikit-learn's digits (examples/digits.py)
#   make test   lint and format check (ruff), then the whole test suite, PostgreSQL server included
#               (.ci/postgres.sh starts one) and browser tests of the dashboard (.ci/chromium.sh installs Chromium)
#   make bench  the benchmark suite (about 1.5 h on 2 cores; resumable), writes benchmarks/RESULTS.md; bench-quick: smoke run

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Installed first and alone: resolving plain `torch` would pull a multi-GB CUDA build.
TORCH_PIN ?= torch==2.13.0
PYTEST_ARGS ?=
# pytest-xdist workers: many tests wait on the processes they start, so two workers fit two cores.
# Each worker takes two tests at a time, in the order tests/conftest.py gives (longest first).
PYTEST_WORKERS ?= 2
# Extra arguments of `python -m benchmarks`, e.g. BENCH_ARGS="--tasks branin,mixed --seeds 5".
BENCH_ARGS ?=

# The anchors of the broad suite, each in a venv of its own (HEBO pins an old numpy; SMAC3 its own
# ConfigSpace); benchmarks/anchor_bridge.py drives them from the suite's process.
ANCHOR_TORCH_WHEEL ?= $(TORCH_PIN)

.PHONY: demo test bench bench-quick bench-anchors bench-broad bench-bayesmark bench-pool bench-pool2 clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "$(TORCH_PIN)"
	# The benchmarks extra too: the tests of the benchmark harness run against the real libraries.
	$(PY) -m pip install --quiet -e ".[tests,examples,postgresql,benchmarks,dashboard,pandas,trackers]"
	touch $@

demo: $(VENV)/.installed
	$(PY) examples/digits.py --n-trials 30

# The bayesmark venv too: the tests of the challenge's problems evaluate them through it.
test: $(VENV)/.installed .venv-bayesmark/.installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	. .ci/postgres.sh && . .ci/chromium.sh && $(PY) -m pytest -n $(PYTEST_WORKERS) --maxschedchunk 2 --durations=20 $(PYTEST_ARGS)

bench: $(VENV)/.installed
	nice -n 10 $(PY) -m benchmarks $(BENCH_ARGS)

bench-quick: $(VENV)/.installed
	nice -n 10 $(PY) -m benchmarks --quick $(BENCH_ARGS)

.venv-hebo/.installed:
	$(PYTHON) -m venv .venv-hebo
	.venv-hebo/bin/python -m pip install --quiet "$(ANCHOR_TORCH_WHEEL)"
	# hebo pins numpy<1.25 and pymoo==0.6.0 (a source release only for this Python): pinned releases with
	# wheels for the rest, else pip backtracks through matplotlib's source releases for an hour.
	.venv-hebo/bin/python -m pip install --quiet --only-binary=:all: --no-binary=pymoo hebo==0.3.6 \
		numpy==1.24.4 matplotlib==3.7.5 scipy==1.11.4 pandas==2.0.3 scikit-learn==1.3.2
	touch $@

.venv-smac/.installed:
	$(PYTHON) -m venv .venv-smac
	.venv-smac/bin/python -m pip install --quiet smac
	touch $@

# bayesmark 0.0.8 evaluates the NeurIPS 2020 BBO challenge's problems (benchmarks/bayesmark_worker.py):
# it needs scikit-learn 1.1 (load_boston, normalize=) and numpy 1.23; the releases it ran with here
# (bayesmark is a source release only).
.venv-bayesmark/.installed:
	$(PYTHON) -m venv .venv-bayesmark
	.venv-bayesmark/bin/python -m pip install --quiet --only-binary=:all: --no-binary=bayesmark bayesmark==0.0.8 scikit-learn==1.1.3 \
		numpy==1.23.5 scipy==1.15.3 pandas==2.3.3 xarray==2024.7.0
	touch $@

# DEHB and SMAC3's multi-fidelity facade for benchmarks/multi_fidelity.py (both pin numpy < 2).
.venv-mf/.installed:
	$(PYTHON) -m venv .venv-mf
	.venv-mf/bin/python -m pip install --quiet dehb smac
	touch $@

bench-anchors: .venv-hebo/.installed .venv-smac/.installed .venv-mf/.installed

# The broad scikit-learn suite with the anchors, into benchmarks/BROAD_RESULTS.md (resumable).
bench-broad: $(VENV)/.installed bench-anchors
	nice -n 10 $(PY) -m benchmarks --tasks broad --samplers ours,optuna_gp,optuna_tpe,lhpo_random,hebo,smac \
		--budget 30 --report-at 10,20,30 --no-timing --out benchmarks/out/broad --results benchmarks/BROAD_RESULTS.md $(BENCH_ARGS)

bench-pool: $(VENV)/.installed
	nice -n 10 $(PY) -m benchmarks --tasks pool --samplers ours,optuna_gp,optuna_tpe,lhpo_random --seeds 10 \
		--budget 30 --report-at 10,20,30 --no-timing --out benchmarks/out/pool --results benchmarks/POOL_RESULTS.md $(BENCH_ARGS)

# The challenge's 108 problems, into benchmarks/BAYESMARK_RESULTS.md (resumable); the challenge's score:
# python -m benchmarks.bayesmark_score.
bench-bayesmark: $(VENV)/.installed .venv-bayesmark/.installed
	nice -n 10 $(PY) -m benchmarks --tasks bayesmark --samplers ours,optuna_gp,optuna_tpe,lhpo_random --seeds 10 \
		--budget 30 --report-at 10,20,30 --no-timing --out benchmarks/out/bayesmark --results benchmarks/BAYESMARK_RESULTS.md $(BENCH_ARGS)

bench-pool2: $(VENV)/.installed
	nice -n 10 $(PY) -m benchmarks --tasks pool2 --samplers ours,optuna_gp,optuna_tpe,lhpo_random --seeds 10 \
		--budget 30 --report-at 10,20,30 --no-timing --out benchmarks/out/pool2 --results benchmarks/POOL2_RESULTS.md $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .venv-hebo .venv-smac .venv-mf .venv-bayesmark .pytest_cache lightning_hpo_runs
