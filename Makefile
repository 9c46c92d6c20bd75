# Two commands do all the set-up: `make run` (the service) and `make test` (the tests).
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install install-dlib run test lint eval-lfw calibrate eval-fvc calibrate-finger calibrate-contactless

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/install.sh package-lock.json
	scripts/install.sh

# The optional dlib face model (plug-in face-dlib): compiled against OpenBLAS once.
install-dlib:
	BIOMATCH_DLIB=1 scripts/install.sh

run: install
	$(BIN)/biomatch serve

# The whole suite on SQLite, then on the PostgreSQL at 127.0.0.1:5432 (see README: Tests).
test: install
	$(BIN)/pytest
	BIOMATCH_TEST_STORE=postgresql $(BIN)/pytest

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

LFW ?= ../shared/data/face/lfw/lfw
eval-lfw: install
	$(BIN)/biomatch eval lfw $(LFW) --json reports/lfw_verification.json --cache data/cache/lfw.json
	$(BIN)/biomatch eval lfw-identification $(LFW) --json reports/lfw_identification.json --cache data/cache/lfw.json

calibrate: install
	$(BIN)/biomatch calibrate $(LFW) --cache data/cache/lfw.json

FVC ?= ../shared/data/finger
eval-fvc: install
	$(BIN)/biomatch eval fvc $(FVC)/fvc2002_db1b/DB1_B --json reports/fvc2002_db1b.json --cache data/cache/fvc.json
	$(BIN)/biomatch eval fvc $(FVC)/fvc2000_db1b/DB1_B --json reports/fvc2000_db1b.json --cache data/cache/fvc.json

calibrate-finger: install
	$(BIN)/biomatch calibrate-finger $(FVC)/fvc2002_db1b/DB1_B $(FVC)/fvc2000_db1b/DB1_B --cache data/cache/fvc.json

CONTACTLESS_SOURCES = \
	'contactless:$(FVC)/ridgebase_samples/fingertips:cl_*' \
	'contactless:$(FVC)/contactless_lab:*_1_[012].jpg:^(\d+_\d+)_1_' \
	'four_finger:$(FVC)/ridgebase_samples/four_finger:*.jpg' \
	'contact:$(FVC)/ridgebase_samples/fingertips:ct_*' \
	'contact:$(FVC)/fvc2002_db1b/DB1_B:*.tif:^(\d+)_' \
	'contact:$(FVC)/fvc2000_db1b/DB1_B:*.tif:^(\d+)_'
calibrate-contactless: install
	$(BIN)/biomatch calibrate-contactless $(CONTACTLESS_SOURCES) --cache data/cache/contactless.json
