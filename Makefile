# Two commands do all the set-up on a fresh clone: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.liverseg-setup

.PHONY: setup run test sample bench fuzz screenshots package package-test clean

setup: $(STAMP)

$(STAMP): pyproject.toml plugins/liverseg-threshold-backend/pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	# torch/torchvision come from this machine kind's local disk (pinned in pyproject)
	$(PIP) install -e ".[train,dev]" -e plugins/liverseg-threshold-backend
	# The sample case (LiTS case 117, held out, never trained on): fetched at
	# set-up time, not committed.  --no-deps: we only read its data files.
	$(PIP) install -q --no-deps "liver-ct-segmentation-package==1.6.0"
	touch $(STAMP)

run: setup
	$(VENV)/bin/liverseg-studio

test: setup
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest

clean:
	rm -rf $(VENV) build dist
