# `make demo` and `make test` work on a fresh machine: they create .venv and install what
# they need first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
UI_VENDOR := src/tempodb/server/ui/vendor/VERSION

.PHONY: install demo test lint bench mutation clean

$(STAMP): pyproject.toml $(wildcard src/tempodb/_speedups*.[ch])
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The distribution was called tempodb before 2.0 (PyPI's tempodb is the 2014 client).
	$(PY) -m pip uninstall --quiet --yes tempodb 2>/dev/null || true
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The explorer's chart library, fetched from the npm registry at the version pinned in the script.
$(UI_VENDOR): build_support/ui_assets.py
	$(PYTHON) build_support/ui_assets.py

install: $(STAMP) $(UI_VENDOR)

demo: install
	$(PY) scripts/demo.py

lint: install
	$(VENV)/bin/ruff check src tests examples scripts bench build_support setup.py
	$(VENV)/bin/ruff format --check src tests examples scripts bench build_support setup.py
	$(VENV)/bin/mypy

test: install lint
	bash scripts/ensure-postgres.sh
	bash scripts/ensure-chromium.sh
	bash scripts/ensure-strace.sh
	bash scripts/ensure-prometheus.sh
	bash scripts/ensure-peers.sh || echo "make test: InfluxDB/VictoriaMetrics not installed; the quick benchmark skips them"
	# The Citus tests run when Citus is installed (.ci/run installs it: scripts/ensure-citus.sh);
	# without it pytest says in one line that they did not run.
	$(VENV)/bin/pytest -q

# The comparison with InfluxDB and VictoriaMetrics (installs them when missing), then the load
# test as a soak (13 minutes: the server's memory must stay flat after 3 minutes of warm-up).
bench: install
	bash scripts/ensure-peers.sh
	bash scripts/ensure-prometheus.sh
	bash scripts/ensure-postgres.sh
	bash scripts/ensure-citus.sh || echo "make bench: Citus not installed; the benchmark skips tempodb-citus"
	$(PY) bench/bench.py
	$(PY) bench/load.py --soak --warmup 180 --duration 600
	$(PY) bench/embedded.py

# Mutation testing of the core modules with their fast tests (pyproject's [tool.mutmut]);
# not part of `make test`: it takes long.  Prints the surviving mutants.
mutation: install
	$(PY) -m pip install --quiet 'mutmut>=3.8,<4'
	$(VENV)/bin/mutmut run
	$(VENV)/bin/mutmut results

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build src/*.egg-info \
		src/tempodb/server/ui/vendor mutants
