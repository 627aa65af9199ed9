# The README's two set-up commands: `make demo` and `make test`. Each works from a
# fresh clone: it makes the virtualenv, installs what it needs, then runs.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q
OUT    ?= out
# Evaluations the reference build runs at once (one per core).
JOBS   ?= 2

.PHONY: demo test lint format placeholder reference clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Stamp files so a second `make` does not reinstall; they follow pyproject.toml.
$(VENV)/.base: pyproject.toml | $(BIN)/python
	$(PIP) install -e .
	touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[export,dev,realsense,serial,openvino]'
	touch $@ $(VENV)/.base

demo: $(VENV)/.base
	@mkdir -p $(OUT) && rm -f $(OUT)/demo.mcap
	$(BIN)/grasprt run --robot sim --episodes 3 --record $(OUT)/demo.mcap --json $(OUT)/demo.json

test: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Rebuilds the random-weight placeholder bundle (needs the export extra).
placeholder: $(VENV)/.dev
	$(BIN)/python -m grasprt.export.placeholder --out models/placeholder

# The reference bundle's whole recipe, from a clean checkout: segmenter, DAgger, export,
# the evaluations and the model card (~75 min on 2 cores; stages resume from build/).
reference: $(VENV)/.dev
	$(BIN)/python -m grasprt.export.reference.build --out models/reference --seed 0 --jobs $(JOBS)

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .ruff_cache *.egg-info
