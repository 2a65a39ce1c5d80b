# The two set-up commands a user needs are `make demo` and `make test`; both create .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-deps lint format dev bench lineage clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "dcicd needs Python 3.11 or newer (set PYTHON=python3.11)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,production]'
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/dcicd demo

# The report test renders in Debian's chromium; the production-profile test starts Debian's
# PostgreSQL. Installed here when missing and this user may (root with apt); else those tests
# say why they skip.
test-deps:
	@if command -v chromium >/dev/null && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		exit 0; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's chromium and postgresql for the tests ..."; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -q chromium postgresql >/dev/null 2>&1 \
		|| { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium postgresql >/dev/null; } \
		|| echo "could not install chromium and postgresql: their tests will skip"; \
	fi

# Days are UTC days on any host: the tests that count days run again in two zones that are not.
test: install test-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -q -n auto
	TZ=America/Los_Angeles $(BIN)/pytest -q -n auto -m dates
	TZ=Asia/Kolkata $(BIN)/pytest -q -n auto -m dates

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# `dg dev` (dagster-dg-cli) is what Dagster now starts the UI with: `dagster dev` warns that it is
# superseded. The same workspace.yaml as production: the same code location name.
dev: install
	DAGSTER_HOME="$$($(BIN)/python -m dcicd_platform.home)" $(BIN)/dg dev -w workspace.yaml

# After changing a SQL model or a detector's SQL: the lineage the code location loads without parsing.
lineage: install
	$(BIN)/python -m dcicd_platform.lineage_file

bench: install
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .dcicd .pytest_cache .ruff_cache
