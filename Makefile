# The two commands a newcomer needs: `make demo` and `make test`. Both run `make setup` first.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
JARS_STAMP := .cache/jars/.resolved

.PHONY: setup browser demo test test-fast validate-segments clean benchmark

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

# Headless Chromium for the data-quality report's browser test (tests/integration/test_quality_browser.py):
# the Debian package, installed where no Chromium is found (as root, or through sudo). When that is not
# possible, setup says so and the test fails with the command to run.
BROWSERS := chromium chromium-browser google-chrome
browser:
	@for b in $(BROWSERS); do command -v $$b >/dev/null 2>&1 && exit 0; done; \
	echo "setup: installing headless Chromium for the browser test (apt-get install chromium)"; \
	SUDO=$$( [ "$$(id -u)" = 0 ] || command -v sudo || true ); \
	{ $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; } \
	  || echo "setup: could not install chromium; install it (Debian: apt-get install -y chromium) or the browser test fails" >&2

demo: setup
	$(VENV)/bin/audience demo

test: setup browser
	$(PY) -m pytest -q --durations=30

test-fast: setup browser
	$(PY) -m pytest -q -m "not slow"

validate-segments: setup
	$(VENV)/bin/audience segments validate

benchmark: setup
	$(PY) -m benchmarks.run

clean:
	rm -rf $(VENV) .cache demo-workdir
