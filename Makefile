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

.PHONY: all setup lint test test-rust test-python test-spark spark-venvs demo bench clean

all: test

setup:
	bash scripts/setup.sh

lint: setup
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

test-rust: setup
	cargo test --workspace --exclude mosaicrs-train

test-python: setup jar
	$(PYTHON) -m pytest -q tests --ignore=tests/spark

test: setup lint test-rust test-torch test-python test-spark

# --- Spark connector ---------------------------------------------------------
# `make jar`: build/libs/mosaicrs-spark-3.5_2.12.jar (Spark 3.5) and
# build/libs/mosaicrs-spark-4_2.13.jar (Spark 4.0 to 4.3), each carrying the
# native library, and build/libs/mosaicrs-examples.jar, with Gradle (it runs
# cargo itself). The 3.5 jar compiles against .venvs/spark-3.5.9's jars.
# `make test-spark`: the full connector suite on Spark 4.0 (.venv) and 3.5,
# and the smoke test on every other 4.x minor (.venvs/spark-<version>, created
# from PyPI by scripts/spark_venvs.sh).
# `make bench-connector`: Spark write rows/s, mosaicrs vs Parquet (Spark 4.0);
# `make bench-connector-3.5`: the same on Spark 3.5.
# `make bench-scan`: Spark scan (count, sums, projection), mosaicrs vs Parquet.
SPARK_FULL_VERSION ?= 3.5.9
SPARK_SMOKE_VERSIONS ?= 4.0.5 4.1.4 4.2.1 4.3.0
.PHONY: jar bench-connector bench-connector-3.5 bench-scan

spark-venvs:
	SPARK_TEST_VERSIONS="$(SPARK_FULL_VERSION) $(SPARK_SMOKE_VERSIONS)" bash scripts/spark_venvs.sh

jar: setup
	bash scripts/spark_venvs.sh $(SPARK_FULL_VERSION)
	gradle --quiet jar

test-spark: setup jar spark-venvs
	$(PYTHON) -m pytest -q tests/spark
	.venvs/spark-$(SPARK_FULL_VERSION)/bin/python -m pytest -q tests/spark
	for v in $(SPARK_SMOKE_VERSIONS); do \
	  echo "Spark $$v: smoke test"; \
	  .venvs/spark-$$v/bin/python -m pytest -q tests/spark/test_connector_smoke.py; \
	done

bench-connector: jar
	$(PYTHON) bench/connector_write_bench.py

bench-connector-3.5: jar
	.venvs/spark-$(SPARK_FULL_VERSION)/bin/python bench/connector_write_bench.py

bench-scan: jar
	$(PYTHON) bench/spark_scan_bench.py
# --- end Spark connector ---------------------------------------------------

clean:
	cargo clean
	rm -rf build jvm-connector/build .gradle .venvs/spark-*

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
	spark-submit --master 'local[2]' --conf spark.log.level=WARN --jars build/libs/mosaicrs-spark-4_2.13.jar \
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
