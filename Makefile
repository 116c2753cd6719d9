# mailbridge — the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
PYTEST_ARGS ?=
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := addresses headers mime received screening autoconfig

.PHONY: help install run test lint fmt typecheck schemas fuzz clean

help:
	@echo "make run      start NATS, PostgreSQL, the local mail stack and the four services (Ctrl-C stops)"
	@echo "make test     install what is needed, lint, and run every test level"
	@echo "make lint     ruff (format + lint) and mypy --strict"
	@echo "make schemas  regenerate contract/: message JSON Schemas, openapi.json, asyncapi/<service>.json"
	@echo "make fuzz     fuzz each input parser for FUZZ_SECONDS (60) and minimize fuzz/corpus/"

install:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@$(UV) sync --frozen
	@$(UV) run --frozen python -m mailbridge.devstack install-packages

run: install
	@$(UV) run --frozen python -m mailbridge.devstack run

test: install lint
	@$(UV) run --frozen pytest $(PYTEST_ARGS)

lint:
	@$(UV) run --frozen ruff format --check .
	@$(UV) run --frozen ruff check .
	@$(UV) run --frozen mypy libs/shared/src libs/devstack/src libs/sandbox/src services/*/src

fmt:
	@$(UV) run --frozen ruff format .
	@$(UV) run --frozen ruff check --fix .

schemas:
	@$(UV) run --frozen python -m mailbridge.shared.schemas write contract/schemas
	@$(UV) run --frozen python -m mailbridge.devstack.contract write contract

# Coverage-guided (atheris); fails when a target crashed, after fuzzing every target.
fuzz:
	@$(UV) sync --frozen
	@failed=0; for target in $(FUZZ_TARGETS); do \
	  $(UV) run --frozen python -m fuzz.run $$target --seconds $(FUZZ_SECONDS) || failed=1; \
	done; exit $$failed

clean:
	rm -rf .data .pytest_cache .mypy_cache .ruff_cache
