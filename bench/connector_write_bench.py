"""Spark write throughput: format("mosaicrs") against Spark's own Parquet writer.

Both write the same cached DataFrame (an id, 16 float columns and an int
label) in the same Spark session, alternating, after one untimed warm-up
write each. Prints rows/s per writer and the mosaicrs/Parquet ratio.

    .venv/bin/python bench/connector_write_bench.py [--rows 2000000] [--repeats 3]

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


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=2_000_000)
    p.add_argument("--partitions", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--master", default="local[2]")
    p.add_argument("--batch-rows", default=None, help="mosaicrs batchRows option")
    p.add_argument("--compression", default="none", help="mosaicrs compression option")
    p.add_argument("--jar", default=JAR)
    p.add_argument("--workdir", default=None, help="where to write (default: a temp dir)")
    return p.parse_args()


def folder_bytes(path):
    total = 0
    for dirpath, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(dirpath, f)) for f in files)
    return total


def main():
    args = parse_args()
    if not os.path.exists(args.jar):
        sys.exit(f"{args.jar} not found: run `make jar` first")
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    spark = (
        SparkSession.builder.master(args.master)
        .appName("mosaicrs-connector-write-bench")
        .config("spark.jars", args.jar)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", "4g")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    df = spark.range(0, args.rows, numPartitions=args.partitions).select(
        F.col("id"),
        *[F.rand(seed=i).cast("float").alias(f"f{i}") for i in range(16)],
        (F.col("id") % 10).cast("int").alias("label"),
    )
    df = df.cache()
    assert df.count() == args.rows

    mosaicrs_options = {"compression": args.compression}
    if args.batch_rows:
        mosaicrs_options["batchRows"] = args.batch_rows
    writers = {
        "parquet (snappy, Spark default)": lambda out: df.write.mode("overwrite").parquet(out),
        "parquet (uncompressed)": lambda out: df.write.mode("overwrite")
        .option("compression", "none")
        .parquet(out),
        f"mosaicrs ({args.compression})": lambda out: df.write.format("mosaicrs")
        .mode("overwrite")
        .options(**mosaicrs_options)
        .save(out),
    }
    workdir = args.workdir or tempfile.mkdtemp(prefix="mosaicrs-write-bench-")
    times = {name: [] for name in writers}
    sizes = {}
    try:
        for repeat in range(args.repeats + 1):
            for i, (name, write) in enumerate(writers.items()):
                out = os.path.join(workdir, f"out{i}")
                start = time.perf_counter()
                write(out)
                elapsed = time.perf_counter() - start
                if repeat > 0:  # repeat 0 warms up the JIT and the page cache
                    times[name].append(elapsed)
                sizes[name] = folder_bytes(out)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
        spark.stop()

    cores = os.cpu_count()
    print(
        f"\nSpark write of {args.rows:,} rows (id, 16 float, int label), "
        f"{args.partitions} partitions, {args.master}, {cores} CPUs, best of {args.repeats}"
    )
    print(f"{'writer':36} {'best s':>8} {'median s':>9} {'rows/s':>12} {'MB on disk':>11}")
    rates = {}
    for name, ts in times.items():
        best = min(ts)
        rates[name] = args.rows / best
        print(
            f"{name:36} {best:8.2f} {statistics.median(ts):9.2f} "
            f"{rates[name]:12,.0f} {sizes[name] / 1e6:11.1f}"
        )
    ours = rates[f"mosaicrs ({args.compression})"]
    for name, rate in rates.items():
        if not name.startswith("mosaicrs"):
            print(f"ratio mosaicrs / {name}: {ours / rate:.2f}x")


if __name__ == "__main__":
    main()
