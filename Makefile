# MedLoop: the two commands are `make run` and `make test` (see README).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements-extra.txt | sha256sum | cut -c1-12)

.PHONY: run test lint bench-queue clean install

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

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python manage.py run_platform

test: $(STAMP)
	bash scripts/system-deps.sh
	PATH="$(abspath $(BIN)):$$PATH" bash scripts/test.sh

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy medloop annotations active_learning frontend

bench-queue: $(STAMP)
	$(BIN)/python bench/queue_load.py

clean:
	rm -rf $(VENV) var
