# The two commands a newcomer needs: `make demo` and `make test`. Both run `make setup` first.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
JARS_STAMP := .cache/jars/.resolved

.PHONY: setup demo test test-fast validate-segments clean benchmark

setup: $(STAMP) $(JARS_STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "setup: $(PYTHON) not found (Python 3.11 is required)" >&2; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# Delta's JVM jars are not on PyPI: resolve them once from Maven Central into .cache/jars (git-ignored);
# every SparkSession afterwards loads them from there with no network.
$(JARS_STAMP): $(STAMP) pipelines/jars.py
	$(PY) -m pipelines.jars fetch

demo: setup
	$(VENV)/bin/audience demo

test: setup
	$(PY) -m pytest -q --durations=30

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

validate-segments: setup
	$(VENV)/bin/audience segments validate

benchmark: setup
	$(PY) -m benchmarks.run

clean:
	rm -rf $(VENV) .cache demo-workdir
