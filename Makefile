# Every target creates the virtualenv it needs, so each works on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv example test lint typecheck schemas bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

example: $(STAMP)
	$(VENV)/bin/codex-rpc-analytics example

test: $(STAMP)
	$(PY) -m ruff check src tests bench
	$(PY) -m mypy src
	$(PY) -m pytest -q

schemas: $(STAMP)
	$(PY) -m codex_rpc_analytics.schema schemas

bench: $(STAMP)
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
