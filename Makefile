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
# Each doctest links into its own binary; leaving the dependencies' debug
# info out of it halves the doctests' CPU time.
export RUSTDOCFLAGS ?= -C strip=debuginfo
# Each `make test` stage records its wall time and CPU use; `make test` prints
# them at the end. Sub-makes inherit the top make's start: it also names the
# run's background jobs (scripts/background.sh).
ifndef MAKE_STARTED
MAKE_STARTED := $(shell date +%s.%N)
endif
export MAKE_STARTED
BEGIN = @python3 scripts/stage_times.py begin $@
END = @python3 scripts/stage_times.py end $@

.PHONY: all setup lint test test-rust test-python test-jvm test-spark spark-venvs demo bench bench-quick clean python demo-python
.PHONY: prefetch-crates prefetch-spark

all: test

setup:
	$(BEGIN)
	bash scripts/setup.sh
	$(END)

lint: setup
	$(BEGIN)
	bash scripts/background.sh wait crates
	python3 scripts/check_layers.py
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(END)

# The libtorch-free crates (the workspace's default members). The
# object-store tests start moto from the venv; here they must run, not skip.
test-rust: setup
	$(BEGIN)
	MOSAICRS_REQUIRE_MOTO=1 cargo test
	$(END)

# Two pytest-xdist workers: most tests run one thread in Python or wait for a
# subprocess (torchrun, the CLI, moto, pip), so the second core would idle.
# Each file's tests go to one worker: module fixtures (the token bench run,
# the mix sources) run once, and each worker has its own moto server.
test-python: setup jar python
	$(BEGIN)
	$(PYTHON) -m pytest -q -n 2 --dist loadfile --timeout=900 --timeout-method=thread tests --ignore=tests/spark
	$(END)

# Downloads that only later stages need run in the background beside the
# stages that compute (scripts/background.sh): the crates during setup's pip
# installs, the Spark venvs during lint and the Rust tests. The first stage
# that needs one waits for it, and fails with its log if it failed.
test: prefetch-crates setup prefetch-spark lint test-rust test-torch test-python test-jvm check-glibc test-spark
	@python3 scripts/stage_times.py report $(MAKE_STARTED)

prefetch-crates:
	bash scripts/background.sh start crates cargo fetch

prefetch-spark: setup
	bash scripts/background.sh start spark-venvs env \
	  SPARK_TEST_VERSIONS="$(SPARK_FULL_VERSION) $(SPARK_SMOKE_VERSIONS)" bash scripts/spark_venvs.sh

# --- Spark connector ---------------------------------------------------------
# `make jar`: build/libs/mosaicrs-spark-3.5_2.12.jar (Spark 3.5) and
# build/libs/mosaicrs-spark-4_2.13.jar (Spark 4.0 to 4.3), each carrying the
# native library, and build/libs/mosaicrs-examples.jar, with Gradle (it runs
# cargo itself). The 3.5 jar compiles against .venvs/spark-3.5.9's jars.
# `make test-spark`: the full connector suite on Spark 4.0 (.venv) and 3.5,
# and the smoke test on every other 4.x minor (.venvs/spark-<version>, created
# from PyPI by scripts/spark_venvs.sh).
# `make bench-connector`: Spark write rows/s of Spark's `noop` floor, Parquet and mosaicrs
# (Spark 4.0); `make bench-connector-3.5`: the same on Spark 3.5; `make bench-write`: both
# lines with 1M rows, into results.json's `spark_write`.
# `make bench-scan`: Spark scan (count, sums, projection), mosaicrs vs Parquet.
SPARK_FULL_VERSION ?= 3.5.9
SPARK_SMOKE_VERSIONS ?= 4.0.5 4.1.4 4.2.1 4.3.0
.PHONY: jar jar-native jar-classes test-spark-4 test-spark-3.5 test-spark-3.5-smoke test-spark-smoke bench-connector bench-connector-3.5 bench-write bench-scan bench-s3 soak-spark-kill

spark-venvs:
	$(BEGIN)
	bash scripts/background.sh wait spark-venvs
	SPARK_TEST_VERSIONS="$(SPARK_FULL_VERSION) $(SPARK_SMOKE_VERSIONS)" bash scripts/spark_venvs.sh
	$(END)

# The JNI library (cargo, both cores) builds while the Spark 3.5 venv downloads
# and scalac compiles the JVM classes; Gradle then packages the jars.
jar: setup
	$(BEGIN)
	$(MAKE) --no-print-directory -j2 jar-native jar-classes
	gradle --quiet jar
	$(END)

# The JNI library for glibc 2.28, as build.gradle's cargoBuild builds it.
jar-native:
	cargo zigbuild --release --target x86_64-unknown-linux-gnu.2.28 -p mosaicrs-jni

jar-classes:
	bash scripts/spark_venvs.sh $(SPARK_FULL_VERSION)
	gradle --quiet compileConnectorScalaSpark35 compileConnectorScalaSpark4 compileExamplesScala

# Two lanes side by side: the Spark 4.0 suite, and the Spark 3.5 suite followed
# by the 4.x smoke tests. A suite's one local[2,4] session mostly waits for JVM
# start-up, subprocess jobs and small tasks; the stage table's CPU column
# shows whether the two lanes keep both cores busy.
test-spark: setup jar python spark-venvs
	$(BEGIN)
	$(MAKE) --no-print-directory --output-sync=target -j2 test-spark-4 test-spark-3.5-smoke
	$(END)

test-spark-4:
	$(BEGIN)
	$(PYTHON) -m pytest -q --timeout=1200 --timeout-method=thread tests/spark
	$(END)

test-spark-3.5-smoke:
	$(MAKE) --no-print-directory test-spark-3.5
	$(MAKE) --no-print-directory test-spark-smoke

# JUnit tests of the connector's JVM side against the native library
# (jvm-connector/src/test): the JNI contract, option parsing, type mapping, errors.
test-jvm: setup
	$(BEGIN)
	gradle --quiet test
	$(END)

test-spark-3.5:
	$(BEGIN)
	.venvs/spark-$(SPARK_FULL_VERSION)/bin/python -m pytest -q --timeout=1200 --timeout-method=thread tests/spark
	$(END)

test-spark-smoke:
	$(BEGIN)
	for v in $(SPARK_SMOKE_VERSIONS); do \
	  echo "Spark $$v: smoke test"; \
	  .venvs/spark-$$v/bin/python -m pytest -q --timeout=600 --timeout-method=thread tests/spark/test_connector_smoke.py; \
	done
	$(END)

# kill -9 of a Spark application at 40 random moments of its writes and commits.
KILL_TRIALS ?= 40
soak-spark-kill: setup jar
	MOSAICRS_KILL_TRIALS=$(KILL_TRIALS) $(PYTHON) -m pytest -q -s tests/spark/test_connector_kill.py

bench-connector: jar
	$(PYTHON) bench/connector_write_bench.py

bench-connector-3.5: jar
	.venvs/spark-$(SPARK_FULL_VERSION)/bin/python bench/connector_write_bench.py

WRITE_BENCH_ARGS ?= --rows 1000000 --repeats 3 --json bench/results/results.json
bench-write: jar
	$(PYTHON) bench/connector_write_bench.py $(WRITE_BENCH_ARGS)
	.venvs/spark-$(SPARK_FULL_VERSION)/bin/python bench/connector_write_bench.py $(WRITE_BENCH_ARGS)

bench-scan: jar
	$(PYTHON) bench/spark_scan_bench.py --json bench/results/results.json

# Spark write to and read from an S3 server (moto, started by the bench):
# mosaicrs against Parquet through s3a and MosaicML MDS / StreamingDataset.
bench-s3: jar python
	$(PYTHON) bench/s3_bench.py --json bench/results/s3.json

clean:
	cargo clean
	rm -rf build jvm-connector/build .gradle .venvs/spark-* dist python/mosaicrs/jars

# --- libtorch: tensor tests, training demo, loader benchmark -----------------
# Binaries and tests that use tch carry an rpath to torch/lib (see
# crates/torch-link); LD_LIBRARY_PATH covers doctests.
TORCH_LIB = $$($(PYTHON) -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
DEMO_DIR ?= demo-output
DEMO_EPOCHS ?= 20
TRAIN = target/release/mosaicrs-train

.PHONY: test-torch train-build bench-build demo-native demo-classes demo-train demo-convert loader-bench format-bench

test-torch: setup
	$(BEGIN)
	LD_LIBRARY_PATH=$(TORCH_LIB) cargo test -p mosaicrs-tch -p mosaicrs-train -p mosaicrs-bench
	$(END)

# target/release/mosaicrs-train, and the CLI (target/release/mosaicrs).
train-build: setup
	cargo build --release -p mosaicrs-train -p mosaicrs-cli

# target/release/mosaicrs-loader-bench and mosaicrs-format-bench.
bench-build: setup
	cargo build --release -p mosaicrs-bench

# The seed scenario: digits CSV -> Spark (local[2], the connector jar) ->
# mosaicrs dataset -> Rust MLP (CUDA if present, else CPU) -> accuracy.
# It builds only what it runs, each crate once: one cargo invocation for the
# trainer and the JNI library, for this host (they share mosaicrs, arrow,
# object_store, ...), while Gradle compiles the Spark 4 connector and the
# examples; the jars are then packaged with that library into build/host-libs.
# The jars that ship (`make jar`, build/libs) link it against glibc 2.28.
HOST_LIBS = build/host-libs
demo: export SETUP_REQUIREMENTS = scripts/requirements-demo.txt
demo: setup
	$(MAKE) --no-print-directory -j2 demo-native demo-classes
	gradle --quiet -PnativeLib=$(CURDIR)/target/release/libmosaicrs_jni.so connectorJarSpark4 examplesJar
	rm -rf $(DEMO_DIR) && mkdir -p $(DEMO_DIR)
	$(PYTHON) scripts/make_digits_csv.py $(DEMO_DIR)/digits.csv
	spark-submit --master 'local[2]' --conf spark.log.level=WARN --jars $(HOST_LIBS)/mosaicrs-spark-4_2.13.jar \
	  --class io.mosaicrs.examples.CsvToMosaicrs $(HOST_LIBS)/mosaicrs-examples.jar \
	  $(DEMO_DIR)/digits.csv $(DEMO_DIR)/digits.mosaicrs
	$(DEMO_TRAIN)

# The trainer and the JNI library (target/release/libmosaicrs_jni.so).
demo-native: setup
	cargo build --release -p mosaicrs-train -p mosaicrs-jni

# The classes of the Spark 4 connector and of the Scala examples.
demo-classes: setup
	gradle --quiet compileConnectorScalaSpark4 compileExamplesScala

# Trains on $(DEMO_DIR)/digits.mosaicrs and prints `accuracy=... data_wait_s=...`.
DEMO_TRAIN = $(TRAIN) --data $(DEMO_DIR)/digits.mosaicrs --epochs $(DEMO_EPOCHS) --device auto \
	  --checkpoint-dir $(DEMO_DIR)/checkpoints
demo-train: demo-native
	$(DEMO_TRAIN)

# The same without Spark (the `mosaicrs convert` CLI writes the dataset).
demo-convert: setup train-build
	rm -rf $(DEMO_DIR) && mkdir -p $(DEMO_DIR)
	$(PYTHON) scripts/make_digits_csv.py $(DEMO_DIR)/digits.csv
	target/release/mosaicrs convert $(DEMO_DIR)/digits.csv $(DEMO_DIR)/digits.mosaicrs --quiet
	$(DEMO_TRAIN)

# Loader throughput against in-memory gathers and memcpy (BENCHMARKS.md, "Loader").
loader-bench: bench-build
	target/release/mosaicrs-loader-bench $(LOADER_BENCH_ARGS)

# Write, scan and random access against memcpy (BENCHMARKS.md, "Format").
format-bench: bench-build
	target/release/mosaicrs-format-bench $(FORMAT_BENCH_ARGS)

# Criterion benches beside the code (core and tch crates), small and short.
bench-quick: setup
	cargo bench -p mosaicrs --bench core
	LD_LIBRARY_PATH=$(TORCH_LIB) cargo bench -p mosaicrs-tch --bench assemble

# --- bench/: the comparison suite, not part of `make test` ---------------------------------
# `make bench` runs every contender on full-size data and rewrites the generated tables in
# BENCHMARKS.md (contender venvs, .venvs/<name>, are created on first use), then the loader,
# scan, token and mix benches below. `make bench-targets` runs only the benches behind a speed
# target, the write-floor bench (`bench-write`) included.
# `make bench-smoke` is the same suite on tiny data without installing anything.
# `make bench-tokens`: token packing (TokenLoader against HF datasets, MosaicML Streaming and
# memcpy) and ragged id lists (Loader against a torch DataLoader) into bench/results/tokens.json.
# `make bench-mix`: a three-source mix (0.6/0.3/0.1) against the same rows from one source,
# mosaicrs and MosaicML Streaming, into bench/results/mix.json (and results.json's `mix`).
BENCH_ARGS ?=
TOKENS_BENCH_ARGS ?=
MIX_BENCH_ARGS ?=
.PHONY: bench-venvs bench-smoke bench-tokens bench-mix bench-loader bench-targets
bench: setup jar bench-build
	$(PYTHON) bench/run.py --update-doc $(BENCH_ARGS)
	$(MAKE) bench-loader bench-scan bench-tokens bench-mix

bench-venvs: setup
	$(PYTHON) bench/venvs.py

bench-smoke: setup jar bench-build
	$(PYTHON) bench/run.py --smoke --no-install $(BENCH_ARGS)

bench-tokens: setup python
	$(PYTHON) bench/tokens_bench.py $(TOKENS_BENCH_ARGS)

bench-mix: setup python
	$(PYTHON) bench/mix_bench.py $(MIX_BENCH_ARGS)

# `make bench-loader`: the Python loader against the Rust loader (three runs, each the median of
# paired rounds at B=256 and B=4096), and a columnar table (as Spark writes it) against an
# in-memory numpy gather, in Rust and in Python; JSON into bench/results/.
BENCH_DATA ?= build/bench-data
bench-loader: setup python bench-build
	cargo build --release -p mosaicrs --features testing --example columnar_bench
	for run in 1 2 3; do $(PYTHON) bench/python_loader_bench.py --rows 500000 --features 16 \
	  --batch 256 4096 --reps 7 --dir $(BENCH_DATA)/python-loader \
	  --loader-bench target/release/mosaicrs-loader-bench \
	  --json bench/results/python_loader_run$$run.json || exit 1; done
	target/release/examples/columnar_bench $(BENCH_DATA)/columnar-2m 2000000 256,4096 7
	$(PYTHON) bench/columnar_py_bench.py $(BENCH_DATA)/columnar-2m --json bench/results/columnar_py.json

# Every benchmark behind a speed target, one run each: the loaders, the Spark scan and write
# (both Spark lines), token packing and mixing.
bench-targets: bench-loader bench-scan bench-write bench-tokens bench-mix

# --- Python package (python/): `import mosaicrs`, built by maturin -------------------------
# `make python` builds the wheel and installs it into $(VENV): abi3 (CPython
# 3.10+), manylinux_2_28_x86_64 (the extension is linked by zig against
# glibc 2.28 with the JNI library's cargo-zigbuild settings, scripts/zig_env.sh,
# so the crates they share are built once), stripped, and carrying both
# connector jars (mosaicrs.spark.jar()).
# `make demo-python` runs examples/python (Spark -> mosaicrs -> a torch.nn loop).
# `make demo-tokens`: Spark tokenizes text files in a pandas UDF and writes the
# token ids; a small causal transformer trains on TokenLoader batches and prints
# its loss falling (examples/python/pretrain_tokens.py; CUDA if present).
PY_WHEELS = target/wheels/mosaicrs-python
CONNECTOR_JARS = build/libs/mosaicrs-spark-3.5_2.12.jar build/libs/mosaicrs-spark-4_2.13.jar
python: setup jar
	$(BEGIN)
	rm -rf $(PY_WHEELS) python/mosaicrs/jars && mkdir -p python/mosaicrs/jars
	cp $(CONNECTOR_JARS) python/mosaicrs/jars/
	eval "$$(bash scripts/zig_env.sh)" && \
	  maturin build --release --quiet --strip --compatibility manylinux_2_28 \
	  --target x86_64-unknown-linux-gnu -m python/Cargo.toml -o $(PY_WHEELS)
	$(PYTHON) -m pip install --quiet --force-reinstall --no-deps $(PY_WHEELS)/mosaicrs-*.whl
	$(END)

# Every native library that ships (in both connector jars and in the wheel,
# also inside the wheel's jars) needs at most glibc 2.28.
.PHONY: check-glibc dist
check-glibc: jar python
	$(BEGIN)
	$(PYTHON) scripts/check_glibc.py --max 2.28 $(CONNECTOR_JARS) $(PY_WHEELS)/mosaicrs-*.whl
	$(END)

# dist/: the wheel, both connector jars and a Maven POM for each
# (io.mosaicrs:mosaicrs-spark-4_2.13:<version>), and SHA256SUMS.
dist: jar python check-glibc
	rm -rf dist
	$(PYTHON) scripts/make_dist.py --out dist $(PY_WHEELS)/mosaicrs-*.whl $(CONNECTOR_JARS)
	cd dist && sha256sum --quiet -c SHA256SUMS

demo-python: setup jar python
	rm -rf $(DEMO_DIR)/python && mkdir -p $(DEMO_DIR)/python
	$(PYTHON) scripts/make_digits_csv.py $(DEMO_DIR)/python/digits.csv
	$(PYTHON) examples/python/train_digits.py --csv $(DEMO_DIR)/python/digits.csv \
	  --out $(DEMO_DIR)/python/digits.mosaicrs --jar build/libs/mosaicrs-spark-4_2.13.jar

.PHONY: demo-tokens
demo-tokens: setup jar python
	rm -rf $(DEMO_DIR)/tokens && mkdir -p $(DEMO_DIR)/tokens
	$(PYTHON) examples/python/pretrain_tokens.py --out $(DEMO_DIR)/tokens/corpus.mosaicrs \
	  --jar build/libs/mosaicrs-spark-4_2.13.jar

# --- fuzzing and the mutation run ---------------------------------------------
# `make fuzz`: every cargo-fuzz target for FUZZ_SECONDS each (nightly from
# rustup and cargo-fuzz are installed if missing), starting from the corpus
# in fuzz/corpus; crashers land in fuzz/artifacts/<target>/.
# FUZZ_SANITIZER=none runs about ten times faster than AddressSanitizer (the
# default): for the long runs, where panics and aborts are what is counted.
# `make mutate`: MUTANTS random mutants of small datasets through
# `mosaicrs validate` and `head`; fails on any panic, abort, hang or wrong row.
# `make test` replays fuzz/corpus on stable (rust-core/tests/fuzz_corpus.rs).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= index shard assemble loader
FUZZ_SANITIZER ?= address
MUTANTS ?= 9000
.PHONY: fuzz fuzz-setup fuzz-stable mutate

fuzz-setup:
	rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	cargo +nightly fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked

fuzz: fuzz-setup
	cd fuzz && for t in $(FUZZ_TARGETS); do \
	  cargo +nightly fuzz run --sanitizer $(FUZZ_SANITIZER) $$t corpus/$$t -- \
	    -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 -timeout=20 || exit 1; \
	done

# Without nightly: the same entry points under a simple in-process mutator.
FUZZ_EXECS ?= 20000
fuzz-stable:
	FUZZ_EXECS=$(FUZZ_EXECS) cargo test -p mosaicrs --test fuzz_corpus -- --ignored mutate_corpus_in_process --nocapture

mutate: setup
	cargo build -p mosaicrs-cli --bin mosaicrs
	$(PYTHON) scripts/mutate.py --bin target/debug/mosaicrs --mutants $(MUTANTS)
