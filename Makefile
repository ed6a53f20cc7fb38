# The README's two commands. Each creates .venv at the repo root and installs the project into it
# when missing (or when pyproject.toml changed), so a fresh machine needs nothing else. The test
# plugin (tests/plugin_example, method "toy") is installed only for the tests, with its own stamp:
# `make demo` leaves it out of a user's environment.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test-plugin

.PHONY: demo test install lint clean-venv

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

$(TEST_STAMP): $(STAMP) tests/plugin_example/pyproject.toml
	$(PY) -m pip install -q -e tests/plugin_example
	touch $(TEST_STAMP)

install: $(STAMP)

# The main job: the embedded benchmark (built when absent), Base and POSE on split 1, seed 0,
# mini profile, then the report table. Reruns reuse finished runs (--resume is a no-op on them).
DEMO_OUT := demo_results
demo: $(STAMP)
	test -f datasets/mini/dataset.json || $(VENV)/bin/osma-bench build-data mini --out datasets/mini
	$(VENV)/bin/osma-bench run --method base --data datasets/mini --split 1 --seed 0 --profile mini --resume --out $(DEMO_OUT)
	$(VENV)/bin/osma-bench run --method pose --data datasets/mini --split 1 --seed 0 --profile mini --resume --out $(DEMO_OUT)
	$(VENV)/bin/osma-bench report $(DEMO_OUT) --out $(DEMO_OUT)/REPORT.md

test: $(TEST_STAMP)
	$(PY) -m pytest -x --timeout=600

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean-venv:
	rm -rf $(VENV)
