# Two commands: `make test` and `make train [CONFIG=configs/X.py] [WORKDIR=DIR] [ARGS='--config.a=b']`.
# Both create .venv on first use; the install reruns only when requirements.txt or pyproject.toml change.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt pyproject.toml | sha256sum | cut -c1-16)
CONFIG ?= configs/default.py
WORKDIR ?= runs/$(basename $(notdir $(CONFIG)))
ARGS ?=

.PHONY: install test test-all train clean-venv

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	rm -f $(VENV)/.installed-*
	touch $@

test: $(STAMP)
	$(PY) -m pytest -m "not slow"

test-all: $(STAMP)
	$(PY) -m pytest

train: $(STAMP)
	$(PY) train.py --config $(CONFIG) --workdir $(WORKDIR) $(ARGS)

clean-venv:
	rm -rf $(VENV)
