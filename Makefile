# The README's two commands. Each creates .venv at the repo root and installs the project into it
# when missing (or when pyproject.toml changed), so a fresh machine needs nothing else.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test install lint clean-venv

$(STAMP): pyproject.toml tests/plugin_example/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pip install -q -e tests/plugin_example
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/osma-bench demo

test: $(STAMP)
	$(PY) -m pytest -x -q --timeout=600

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean-venv:
	rm -rf $(VENV)
