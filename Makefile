# Every target creates the virtualenv it needs, so each works on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PACKAGE := codex_rpc_analytics

.PHONY: venv install example test lint typecheck schemas bench clean

# The virtualenv with the package's dependencies and the test tools.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip 'setuptools>=77' wheel
	$(PY) -m pip install -q '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# The package installed as a user installs it (a wheel, not the working tree), rebuilt from
# the tree each time: the tests run against what users run. `build/` goes first, because
# setuptools would put a module deleted from the tree back into the wheel from it.
install: $(STAMP)
	rm -rf build
	$(PY) -m pip install -q --no-deps --no-build-isolation --force-reinstall .

example: install
	$(VENV)/bin/codex-rpc-analytics example

lint: $(STAMP)
	$(PY) -m ruff check $(PACKAGE) tests bench

typecheck: $(STAMP)
	$(PY) -m mypy $(PACKAGE)

# -P keeps the working directory off sys.path, so `import codex_rpc_analytics` finds the
# installed package (tests/conftest.py refuses to run otherwise).
test: install lint typecheck
	$(PY) -P -m pytest -q

schemas: install
	$(PY) -P -m $(PACKAGE).schema schemas

bench: install
	$(PY) -P bench/run.py

clean:
	rm -rf $(VENV) build *.egg-info
