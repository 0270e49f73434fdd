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

.PHONY: all setup lint test test-rust test-python demo bench clean

all: test

setup:
	bash scripts/setup.sh

lint: setup
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

test-rust: setup
	cargo test --workspace --exclude mosaicrs-train

test-python: setup jar
	$(PYTHON) -m pytest -q tests

test: setup lint test-rust test-torch test-python

# --- Spark connector (issue 3) -------------------------------------------
# `make jar`: build/libs/mosaicrs-spark.jar (connector + native library) and
# build/libs/mosaicrs-examples.jar, with Gradle (it runs cargo itself).
# `make bench-connector`: Spark write rows/s, mosaicrs vs Parquet.
# `make bench-scan`: Spark scan (count, sums, projection), mosaicrs vs Parquet.
.PHONY: jar bench-connector bench-scan

jar: setup
	gradle --quiet jar

bench-connector: jar
	$(PYTHON) bench/connector_write_bench.py

bench-scan: jar
	$(PYTHON) bench/spark_scan_bench.py
# --- end Spark connector ---------------------------------------------------

clean:
	cargo clean
	rm -rf build jvm-connector/build .gradle

# --- loader (issue 4): libtorch tests, training demo, loader benchmark -------
# Binaries and tests that use tch carry an rpath to torch/lib (see
# rust-core/build_support/torch_link.rs); LD_LIBRARY_PATH covers doctests.
TORCH_LIB = $$($(PYTHON) -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
DEMO_DIR ?= demo-output
DEMO_EPOCHS ?= 20
TRAIN = target/release/mosaicrs-train

.PHONY: test-torch train-build demo-train demo-convert loader-bench

test-torch: setup
	LD_LIBRARY_PATH=$(TORCH_LIB) cargo test -p mosaicrs --features tch --test tensor_convert
	LD_LIBRARY_PATH=$(TORCH_LIB) cargo test -p mosaicrs --features tch --doc tensor
	LD_LIBRARY_PATH=$(TORCH_LIB) cargo test -p mosaicrs-train

train-build: setup
	cargo build --release -p mosaicrs-train

# The seed scenario: digits CSV -> Spark (local[2], the connector jar) ->
# mosaicrs dataset -> Rust MLP (CUDA if present, else CPU) -> accuracy.
demo: setup jar train-build
	rm -rf $(DEMO_DIR) && mkdir -p $(DEMO_DIR)
	$(PYTHON) scripts/make_digits_csv.py $(DEMO_DIR)/digits.csv
	spark-submit --master 'local[2]' --conf spark.log.level=WARN --jars build/libs/mosaicrs-spark.jar \
	  --class io.mosaicrs.examples.CsvToMosaicrs build/libs/mosaicrs-examples.jar \
	  $(DEMO_DIR)/digits.csv $(DEMO_DIR)/digits.mosaicrs
	$(MAKE) --no-print-directory demo-train

# Trains on $(DEMO_DIR)/digits.mosaicrs and prints `accuracy=... data_wait_s=...`.
demo-train: train-build
	$(TRAIN) --data $(DEMO_DIR)/digits.mosaicrs --epochs $(DEMO_EPOCHS) --device auto \
	  --checkpoint-dir $(DEMO_DIR)/checkpoints

# The same without Spark (the `mosaicrs convert` CLI writes the dataset).
demo-convert: setup train-build
	rm -rf $(DEMO_DIR) && mkdir -p $(DEMO_DIR)
	$(PYTHON) scripts/make_digits_csv.py $(DEMO_DIR)/digits.csv
	cargo run --release -q -p mosaicrs -- convert $(DEMO_DIR)/digits.csv $(DEMO_DIR)/digits.mosaicrs --quiet
	$(MAKE) --no-print-directory demo-train

# Loader throughput against in-memory gathers and memcpy (BENCHMARKS.md, "Loader").
loader-bench: train-build
	target/release/mosaicrs-loader-bench $(LOADER_BENCH_ARGS)

# --- bench (issue 5, bench/): the comparison suite, not part of `make test` ---------------
# `make bench` runs every contender on full-size data and rewrites the generated tables in
# BENCHMARKS.md; contender venvs (.venvs/<name>) are created on first use.
# `make bench-smoke` is the same suite on tiny data without installing anything.
BENCH_ARGS ?=
.PHONY: bench-venvs bench-smoke
bench: setup jar train-build
	$(PYTHON) bench/run.py --update-doc $(BENCH_ARGS)

bench-venvs: setup
	$(PYTHON) bench/venvs.py

bench-smoke: setup jar train-build
	$(PYTHON) bench/run.py --smoke --no-install $(BENCH_ARGS)
# --- end bench ------------------------------------------------------------------------------
