# Two commands do all the set-up: `make run` (the service) and `make test` (the tests).
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install run test lint eval-lfw calibrate

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/install.sh
	scripts/install.sh

run: install
	$(BIN)/biomatch serve

test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

LFW ?= ../shared/data/face/lfw/lfw
eval-lfw: install
	$(BIN)/biomatch eval lfw $(LFW) --json reports/lfw_verification.json --cache data/cache/lfw.npz
	$(BIN)/biomatch eval lfw-identification $(LFW) --json reports/lfw_identification.json --cache data/cache/lfw.npz

calibrate: install
	$(BIN)/biomatch calibrate $(LFW) --cache data/cache/lfw.npz
