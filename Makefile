# Two commands: `make test` and `make train [CONFIG=configs/X.py] [WORKDIR=DIR] [ARGS='--config.a=b']`.
# `make test` runs the fast tests; `make ci` (= `make test-all`) every test, as .ci/run does.
# Both create .venv on first use; the install reruns only when requirements.txt or pyproject.toml change.
# `make bench [BENCH_ARGS='--models resnet20 --repeats 3']`: benchmarks/suite.py, ours vs PyTorch;
# PyTorch lives only in .venv-bench (made on first use), never in .venv.
# `make torchvision-venv`: .venv-torchvision, torchvision for the policy ops' pixel comparisons
# (tests/test_image_ops.py, tests/test_policies.py skip without it).
# `make parity [PARITY_ARGS='akamaster_resnet20 --steps 100']`: fidelity/, our train step against
# the reference trainers' in PyTorch and Keras, float64 and float32 (docs/fidelity.md).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt pyproject.toml | sha256sum | cut -c1-16)
CONFIG ?= configs/default.py
WORKDIR ?= runs/$(basename $(notdir $(CONFIG)))
ARGS ?=
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed-torch-2.13.0
BENCH_ARGS ?=
TV_VENV := .venv-torchvision
TV_STAMP := $(TV_VENV)/.installed-torchvision-0.29.1
PARITY_ARGS ?=

.PHONY: install test test-all ci train bench bench-venv torchvision-venv parity clean-venv

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	rm -f $(VENV)/.installed-*
	touch $@

test: $(STAMP)
	$(PY) -m pytest -m "not slow" --durations=15

test-all ci: $(STAMP)
	$(PY) -m pytest --durations=15

train: $(STAMP)
	$(PY) train.py --config $(CONFIG) --workdir $(WORKDIR) $(ARGS)

bench: $(STAMP) $(BENCH_STAMP)
	$(PY) benchmarks/suite.py --torch-python $(BENCH_VENV)/bin/python $(BENCH_ARGS)

bench-venv: $(BENCH_STAMP)

parity: $(STAMP) $(BENCH_STAMP)
	$(PY) -m fidelity --torch-python $(BENCH_VENV)/bin/python $(PARITY_ARGS)

# torch==2.13.0 takes the CPU wheel where pip's find-links has one (as on the development
# machines); from PyPI alone, Linux gets the much larger CUDA build.
$(BENCH_STAMP):
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install -q torch==2.13.0 numpy
	touch $@

# The only torchvision wheels that import on CPU-only torch here are 0.29.x with torch 2.14.1,
# the CUDA build (it runs on the CPU): a venv of its own, apart from the bench's torch 2.13.0.
torchvision-venv: $(TV_STAMP)

$(TV_STAMP):
	test -x $(TV_VENV)/bin/python || $(PYTHON) -m venv $(TV_VENV)
	$(TV_VENV)/bin/pip install -q torch==2.14.1 torchvision==0.29.1 numpy pillow
	touch $@

clean-venv:
	rm -rf $(VENV) $(BENCH_VENV) $(TV_VENV)
