"""Spark scan: spark.read.format("mosaicrs") against Spark's Parquet scan of the same data.

One Spark session writes the same DataFrame (an id, 16 float columns and an
int label) as a mosaicrs dataset and as Parquet (snappy, Spark's default, and
uncompressed), then times three queries on each, alternating, after one
untimed warm-up round:

- `count()`;
- the sum of every column (every value decoded and handed to Spark);
- a projection of two columns (`id`, `f0`), summed, so only those are read.

Prints seconds per query and reader and the Parquet/mosaicrs time ratio
(above 1: mosaicrs is faster).

    .venv/bin/python bench/spark_scan_bench.py [--rows 2000000] [--repeats 3]

Needs the connector jar of the running pyspark's line (`make jar`):
build/libs/mosaicrs-spark-3.5_2.12.jar or build/libs/mosaicrs-spark-4_2.13.jar.
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

import pyspark

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JAR = os.path.join(ROOT, "build", "libs",
                   "mosaicrs-spark-3.5_2.12.jar" if pyspark.__version__.startswith("3.")
                   else "mosaicrs-spark-4_2.13.jar")
FLOATS = 16


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=2_000_000)
    p.add_argument("--partitions", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--master", default="local[2]")
    p.add_argument("--compression", default="none", help="mosaicrs compression option")
    p.add_argument("--jar", default=JAR)
    p.add_argument("--workdir", default=None, help="where to write (default: a temp dir)")
    return p.parse_args()


def main():
    args = parse_args()
    if not os.path.exists(args.jar):
        sys.exit(f"{args.jar} not found: run `make jar` first")
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    spark = (
        SparkSession.builder.master(args.master)
        .appName("mosaicrs-spark-scan-bench")
        .config("spark.jars", args.jar)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", "4g")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    columns = ["id", *[f"f{i}" for i in range(FLOATS)], "label"]
    source = spark.range(0, args.rows, numPartitions=args.partitions).select(
        F.col("id"),
        *[F.rand(seed=i).cast("float").alias(f"f{i}") for i in range(FLOATS)],
        (F.col("id") % 10).cast("int").alias("label"),
    )
    workdir = args.workdir or tempfile.mkdtemp(prefix="mosaicrs-scan-bench-")
    paths = {
        f"mosaicrs ({args.compression})": os.path.join(workdir, "data.mosaicrs"),
        "parquet (snappy)": os.path.join(workdir, "snappy.parquet"),
        "parquet (uncompressed)": os.path.join(workdir, "plain.parquet"),
    }
    try:
        source.write.format("mosaicrs").mode("overwrite") \
            .option("compression", args.compression).save(paths[f"mosaicrs ({args.compression})"])
        source.write.mode("overwrite").parquet(paths["parquet (snappy)"])
        source.write.mode("overwrite").option("compression", "none") \
            .parquet(paths["parquet (uncompressed)"])

        def frame(name):
            path = paths[name]
            if name.startswith("mosaicrs"):
                return spark.read.format("mosaicrs").load(path)
            return spark.read.parquet(path)

        queries = {
            "count()": lambda df: df.count(),
            f"sum of all {len(columns)} columns": lambda df: df.agg(
                *[F.sum(c) for c in columns]).collect(),
            "sum of 2 columns (id, f0)": lambda df: df.select("id", "f0").agg(
                F.sum("id"), F.sum("f0")).collect(),
        }
        answers = {}
        times = {(q, r): [] for q in queries for r in paths}
        for repeat in range(args.repeats + 1):
            for q, run in queries.items():
                for r in paths:
                    df = frame(r)
                    start = time.perf_counter()
                    result = run(df)
                    elapsed = time.perf_counter() - start
                    if repeat > 0:  # repeat 0 warms up the JIT and the page cache
                        times[(q, r)].append(elapsed)
                    answers.setdefault(q, {})[r] = result
        partitions = {r: frame(r).rdd.getNumPartitions() for r in paths}
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
        spark.stop()

    for q, by_reader in answers.items():
        values = list(by_reader.values())
        # Float sums may differ in the last bits with the summation order.
        if q == "count()":
            assert len(set(values)) == 1, by_reader
        else:
            first = values[0][0]
            for other in values[1:]:
                for a, b in zip(first, other[0]):
                    assert abs(a - b) <= 1e-6 * max(1.0, abs(a)), (q, by_reader)

    ours = f"mosaicrs ({args.compression})"
    print(
        f"\nSpark scan of {args.rows:,} rows (id, {FLOATS} float, int label), written with "
        f"{args.partitions} partitions; Spark {pyspark.__version__}, {args.master}, "
        f"{os.cpu_count()} CPUs, best of "
        f"{args.repeats}; scan partitions: "
        + ", ".join(f"{r} {n}" for r, n in partitions.items())
    )
    print(f"{'query':28} {'reader':24} {'best s':>8} {'median s':>9} {'vs mosaicrs':>12}")
    for q in queries:
        best_ours = min(times[(q, ours)])
        for r in paths:
            ts = times[(q, r)]
            ratio = min(ts) / best_ours
            print(f"{q:28} {r:24} {min(ts):8.3f} {statistics.median(ts):9.3f} {ratio:11.2f}x")


if __name__ == "__main__":
    main()
