# Everything a fresh machine needs: Python, pip and make. The venv is created on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint typecheck unit docs bench clean test-openai-oldest test-openai-newest

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install --progress-bar on -e ".[dev]" -e ./fakes
	@touch $(STAMP) $(DEMO_STAMP)

install: $(STAMP)

## What the demo needs, and no more: the package's runtime dependencies, numpy (the adequacy extra: the
## equal-quality section predicts with the shipped adequacy file) and the fake providers
## (fakes/, a distribution of their own: pip install . alone never installs them).
## pip shows what it downloads; once installed, make demo starts at once.
DEMO_STAMP := $(VENV)/.demo-installed
$(DEMO_STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing router (runtime dependencies and numpy, for the equal-quality section) into $(VENV)..."
	$(BIN)/python -m pip install --progress-bar on -e ".[adequacy]" -e ./fakes
	@touch $@

## The main job: fake OpenAI, Gemini and Anthropic providers, a scripted workload, the routing table,
## totals per model and feature, and a picture (router-demo.html).
demo: $(DEMO_STAMP)
	$(BIN)/router demo

## The whole gate: lint, types, tests, docs.
test: lint typecheck unit docs

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict -q -d site

## The suite against the oldest openai we support (.ci/openai-oldest.txt), in a venv of its own.
OLDEST := .venv-openai-oldest
test-openai-oldest:
	@test -x $(OLDEST)/bin/python || $(PYTHON) -m venv $(OLDEST)
	$(OLDEST)/bin/python -m pip install -q --upgrade pip
	$(OLDEST)/bin/python -m pip install -q -e ".[dev]" -e ./fakes -c .ci/openai-oldest.txt
	$(OLDEST)/bin/python -c "import openai; print('openai', openai.__version__)"
	$(OLDEST)/bin/pytest -q

## The suite against the newest openai release. instructor caps jiter below what openai >= 3.3.1
## needs, so it is left out here (its tests skip); the default venv runs them.
NEWEST := .venv-openai-newest
test-openai-newest:
	@test -x $(NEWEST)/bin/python || $(PYTHON) -m venv $(NEWEST)
	$(NEWEST)/bin/python -m pip install -q --upgrade pip
	$(NEWEST)/bin/python -m pip install -q -e ".[dev]" -e ./fakes
	$(NEWEST)/bin/python -m pip uninstall -q -y instructor
	$(NEWEST)/bin/python -m pip install -q --upgrade --upgrade-strategy only-if-needed openai
	$(NEWEST)/bin/python -m pip check
	$(NEWEST)/bin/python -c "import openai; print('openai', openai.__version__)"
	$(NEWEST)/bin/pytest -q

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) $(OLDEST) $(NEWEST) site .pytest_cache .mypy_cache .ruff_cache
