# mosaicrs: `make demo` runs the whole path, `make test` runs every test.
# Both install what they need first (scripts/setup.sh).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
VENV ?= .venv
PYTHON := $(CURDIR)/$(VENV)/bin/python
export VENV
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# tch finds libtorch in the venv's torch wheel.
export LIBTORCH_USE_PYTORCH := 1
export LIBTORCH_BYPASS_VERSION_CHECK := 0

.PHONY: all setup lint test test-rust test-python demo bench clean

all: test

setup:
	bash scripts/setup.sh

lint: setup
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

test-rust: setup
	cargo test --workspace

test-python: setup jar
	$(PYTHON) -m pytest -q tests

test: setup lint test-rust test-python

# --- Spark connector (issue 3) -------------------------------------------
# `make jar`: build/libs/mosaicrs-spark.jar (connector + native library) and
# build/libs/mosaicrs-examples.jar, with Gradle (it runs cargo itself).
# `make bench-connector`: Spark write rows/s, mosaicrs vs Parquet.
.PHONY: jar bench-connector

jar: setup
	gradle --quiet jar

bench-connector: jar
	$(PYTHON) bench/connector_write_bench.py
# --- end Spark connector ---------------------------------------------------

clean:
	cargo clean
	rm -rf build jvm-connector/build .gradle

# --- bench (issue 5, bench/): the comparison suite, not part of `make test` ---------------
# `make bench` runs every contender on full-size data and rewrites the generated tables in
# BENCHMARKS.md; contender venvs (.venvs/<name>) are created on first use.
# `make bench-smoke` is the same suite on tiny data without installing anything.
BENCH_ARGS ?=
.PHONY: bench-venvs bench-smoke
bench: setup jar
	$(PYTHON) bench/run.py --update-doc $(BENCH_ARGS)

bench-venvs: setup
	$(PYTHON) bench/venvs.py

bench-smoke: setup jar
	$(PYTHON) bench/run.py --smoke --no-install $(BENCH_ARGS)
# --- end bench ------------------------------------------------------------------------------
