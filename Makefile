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

.PHONY: install lint format browser services package test demo docs screenshots bench clean

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

# Debian's Chromium for the connection-form test (apt, as root); prints why when it cannot.
browser:
	@bash scripts/install_chromium.sh

# Debian's PostgreSQL and Redis for the integration suite (apt, as root); prints why when it
# cannot. The tests start their own private servers on loopback ports.
services:
	@bash scripts/install_services.sh

# Builds the wheel and sdist, then installs the wheel into clean Python 3.11 and 3.12 venvs
# (pinned to uv.lock) and checks that Airflow registers the provider there.
package:
	@UV="$(UV)" bash scripts/check_wheel.sh

docs: install
	$(BIN)/mkdocs build --strict --site-dir site

test: install lint browser services docs package
	$(BIN)/pytest

# Regenerates docs/img from the real connection form and quota page in a real browser.
screenshots: install browser
	CLARITY_UPDATE_SCREENSHOTS=1 $(BIN)/pytest tests/ui -q

demo: install
	$(BIN)/python scripts/demo.py

clean:
	rm -rf $(VENV) .airflow-demo demo-output site .pytest_cache .mypy_cache .ruff_cache

bench: install
	$(BIN)/python benchmarks/run.py
