# Two commands on a fresh machine: `make demo` and `make test`. Everything else is a step of those.
SHELL := /bin/bash
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := $(PYTHON) -m uv
endif
export UV_PYTHON_DOWNLOADS := never
VENV := .venv
BIN := $(VENV)/bin
EXTRAS := --extra amazon --extra openlineage

.PHONY: install lint format test test-fast demo docs screenshots bench clean

$(VENV)/.installed: pyproject.toml uv.lock
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) sync --locked $(EXTRAS) --python $(PYTHON)
	@touch $@

install: $(VENV)/.installed

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: install lint
	$(BIN)/pytest

demo: install
	$(BIN)/python scripts/demo.py

clean:
	rm -rf $(VENV) .airflow-demo demo-output site .pytest_cache .mypy_cache .ruff_cache
