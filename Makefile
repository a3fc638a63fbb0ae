# One-command entry points. `make demo` and `make test` work on a fresh
# machine: they create .venv, install the package and run.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The exact tested versions (setup.cfg only gives ranges).
CONSTRAINTS := .ci/constraints.txt
DEMO_DIR ?= results/demo

.PHONY: setup espeak-ng demo test bench lint format clean

setup: $(STAMP) espeak-ng

# espeak-ng, a system program, speaks the second synthetic speech source:
# installed from Debian's packages where missing (as root or with sudo),
# else the script says how.
espeak-ng:
	@.ci/install_espeak_ng

$(STAMP): setup.cfg pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) -e ".[dev,analysis]"
	touch $(STAMP)

demo: setup
	$(VENV)/bin/sercl demo --output $(DEMO_DIR)

test: setup
	$(PY) -m pytest

# The benchmarks (docs/benchmarks.md), each at its CPU default size:
# under 15 minutes on 2 cores. benchmarks/gpu_bench.sh runs them at base
# size on CUDA.
BENCH := $(PY) benchmarks
bench: setup
	$(BENCH)/padding.py
	$(BENCH)/brain_overhead.py
	$(BENCH)/bench_stage1_step.py
	$(BENCH)/memory.py
	$(BENCH)/training_step.py
	$(BENCH)/inference.py
	$(BENCH)/stage2_cache.py --size base --utterances 16 --epochs 2

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) results build *.egg-info
