# Everything a developer or CI runs. `make run` and `make test` work on a fresh machine
# with Python 3.11: they create .venv and install the locked dependencies first.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
PORT ?= 8000
PYTEST_WORKERS ?= auto
export PORT

.PHONY: install system-packages run test test-suite lint format bench messages clean

install: $(VENV)/.installed

# Re-synced whenever the lock file changes; otherwise a no-op.
$(VENV)/.installed: uv.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv sync --frozen --quiet --python $(BIN)/python
	@touch $@

system-packages:
	@scripts/system-packages.sh

run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	$(BIN)/python scripts/run_stack.py start --port $(PORT) --procfile Procfile

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy mwolo config
	$(BIN)/python manage.py makemigrations --check --dry-run --settings config.settings.test
	scripts/check-translations.sh

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The suite alone, against whatever services the environment names (see .ci/run).
test-suite: install system-packages
	$(BIN)/pytest -n $(PYTEST_WORKERS)

# System packages first: the lint's translation check needs gettext's msgfmt. One step
# after the other, even under `make -j`.
test: install system-packages
	@$(MAKE) --no-print-directory lint
	@$(MAKE) --no-print-directory test-suite

bench: install
	@for module in bench/[a-z]*.py; do \
	    name=$$(basename $$module .py); \
	    $(BIN)/python -m bench.$$name || exit 1; \
	done

# Refresh locale/fr/LC_MESSAGES/django.po from the code, then compile it after translating.
messages: install
	@command -v msgfmt >/dev/null || { echo "msgfmt (GNU gettext) is missing: install the Debian package gettext (make system-packages, as root)" >&2; exit 1; }
	$(BIN)/python manage.py makemessages --locale fr --no-obsolete --ignore '.venv/*' --ignore 'var/*' --ignore '*/tests/*' --ignore 'tests/*'
	msgfmt --check-format -o locale/fr/LC_MESSAGES/django.mo locale/fr/LC_MESSAGES/django.po

clean:
	rm -rf $(VENV) var staticfiles
