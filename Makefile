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

.PHONY: install lint format browser services package compat compat-lock test demo docs screenshots bench clean

# Older Airflow minors proven in `make test`, each as MINOR:PYTHON (see tests/compat/README.md).
# The newest (uv.lock) runs the whole suite in .venv; `make package` installs it on 3.11 and 3.12.
COMPAT := 3.1:3.11 3.2:3.12

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

# For each older Airflow: an environment resolved as of its release, the wheel installed into it
# with plain pip (Airflow's version must not change), then the suite but the Celery runs.
compat:
	@set -e; for pair in $(COMPAT); do UV="$(UV)" bash scripts/compat.sh $${pair%%:*} $${pair##*:}; done

# Re-resolves tests/compat/airflow-*.txt as of each release date (needs the package index).
compat-lock:
	@UV="$(UV)" bash scripts/compat_lock.sh

docs: install
	$(BIN)/mkdocs build --strict --site-dir site

test: install lint browser services docs package
	$(BIN)/pytest
	@$(MAKE) --no-print-directory compat

# Regenerates docs/img from the real connection form and quota page in a real browser.
screenshots: install browser
	CLARITY_UPDATE_SCREENSHOTS=1 $(BIN)/pytest tests/ui -q

demo: install
	$(BIN)/python scripts/demo.py

clean:
	rm -rf $(VENV) .venv-compat .airflow-demo demo-output site .pytest_cache .mypy_cache .ruff_cache

# The in-process benchmarks, then parallel projects under a real scheduler (needs `services`).
bench: install services
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/parallel_projects.py
