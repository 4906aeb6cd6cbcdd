# The two set-up commands: `make demo` (the main job) and `make test`; `make lint` checks style and types.
# Each creates .venv with the pinned requirements on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint benchmark clean stack stack-down stack-env

demo: $(VENV)/.installed
	$(BIN)/coursedash demo

# Two pytest workers per core: a Spark test spends much of its time waiting on a JVM or a
# subprocess. TEST_WORKERS=0 runs the suite in this process.
TEST_WORKERS ?= $(shell echo $$((2 * $$(nproc))))

test: $(VENV)/.installed-test node_modules/.installed
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# What CI runs before the tests (.ci/run) and pre-commit before each commit: lint, formatting, types.
# The settings and the reason for each are in pyproject.toml.
lint: $(VENV)/.installed-lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# axe-core at the version package-lock.json pins: the browser test checks the page's accessibility with it.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# The night against a DuckDB reference (docs/performance.md); options in BENCHMARK_ARGS,
# e.g. make benchmark BENCHMARK_ARGS="--sizes 100k --requests 1 12".
benchmark: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/night.py $(BENCHMARK_ARGS)

# The production topology on this machine, as processes (docs/deploy.md): Airflow's API server,
# scheduler, DAG processor, triggerer and Celery workers, a Spark master and worker, an S3
# server, an SMTP sink and the dashboard, in the background; their logs in var/stack/logs.
# Needs PostgreSQL and Redis on 127.0.0.1. Ports: make stack AIRFLOW_PORT=8090 DASHBOARD_PORT=8001.
AIRFLOW_PORT ?= 8080
DASHBOARD_PORT ?= 8000

stack: $(VENV)/.installed-test
	$(BIN)/python -m coursedash.stack up --airflow-port $(AIRFLOW_PORT) --dashboard-port $(DASHBOARD_PORT)

# Stops every process `make stack` started, and nothing else.
stack-down:
	@if [ -x $(BIN)/python ]; then $(BIN)/python -m coursedash.stack down; fi

# The stack's settings for a shell: eval "$$(make -s stack-env)"
stack-env: $(VENV)/.installed-test
	@$(BIN)/python -m coursedash.stack env

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt -e .
	$(BIN)/python -m coursedash.classarchive  # Spark's classes, parsed once for every Spark JVM to come (about a minute)
	touch $@

$(VENV)/.installed-bench: $(VENV)/.installed requirements-bench.txt
	$(BIN)/pip install --quiet -r requirements-bench.txt
	touch $@

$(VENV)/.installed-lint: $(VENV)/.installed requirements-lint.txt
	$(BIN)/pip install --quiet -r requirements-lint.txt
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed requirements-test.txt requirements-bench.txt
	$(BIN)/pip install --quiet -r requirements-test.txt
	touch $@

clean:
	rm -rf $(VENV) var test-artifacts node_modules
