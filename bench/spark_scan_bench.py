"""Spark scan: spark.read.format("mosaicrs") against Spark's Parquet scan of the same data.

One Spark session writes the same DataFrame (an id, 16 float columns and an
int label) as a mosaicrs dataset and as Parquet (snappy, Spark's default, and
uncompressed), then times three queries on each, alternating, after one
untimed warm-up round:

- `count()` (answered from the index by mosaicrs);
- the sum of every column (every value decoded; mosaicrs sums in its scan,
  pushed down by Spark as partial aggregates; Parquet hands them to Spark);
- the max of every column (pushed down to mosaicrs too, where each task
  folds its columns; Parquet hands every value to Spark's generated code);
- a projection of two columns (`id`, `f0`), summed, so only those are read.

Prints seconds per query and reader and the Parquet/mosaicrs time ratio
(above 1: mosaicrs is faster). With `--json FILE` (`make bench-scan` gives
bench/results/results.json) the run's figures, machine and load average
replace the file's `spark_scan` key; its other keys are kept.

    .venv/bin/python bench/spark_scan_bench.py [--rows 2000000] [--repeats 3] [--json FILE]

Needs the connector jar of the running pyspark's line (`make jar`):
build/libs/mosaicrs-spark-3.5_2.12.jar or build/libs/mosaicrs-spark-4_2.13.jar.
"""

import json
import os
import statistics
import sys
import time
from datetime import datetime, timezone

import pyspark

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from spark_session import (  # noqa: E402
    COLUMNS, FLOATS, arg_parser, start_spark, synthetic_frame, workdir)


def parse_args():
    p = arg_parser(__doc__.splitlines()[0])
    p.add_argument("--json", default=None,
                   help="results file whose `spark_scan` key this run replaces")
    return p.parse_args()


def record(path, args, load_start, partitions, times, queries, ours):
    """Replaces the `spark_scan` key of the JSON file at `path` with this run."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from run import git_rev, machine_info  # noqa: E402  (bench/run.py)

    machine = machine_info()
    machine["load_average_start"] = load_start
    machine["load_average_end"] = os.getloadavg()
    figures = {}
    for q in queries:
        best_ours = min(times[(q, ours)])
        figures[q] = {r: {"best_s": round(min(ts), 4), "median_s": round(statistics.median(ts), 4),
                          "times_s": [round(t, 4) for t in ts],
                          "ratio_vs_mosaicrs": round(min(ts) / best_ours, 3)}
                      for (qq, r), ts in times.items() if qq == q}
    entry = {
        "meta": {
            "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": "bench/spark_scan_bench.py " + " ".join(sys.argv[1:]),
            "git": git_rev(),
            "machine": machine,
            "spark": f"{pyspark.__version__}, {args.master}, spark.driver.memory=4g",
            "rows": args.rows,
            "write_partitions": args.partitions,
            "repeats": args.repeats,
            "scan_partitions": partitions,
        },
        "queries": figures,
    }
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError):
        doc = {}
    doc["spark_scan"] = entry
    with open(path, "w") as f:
        f.write(json.dumps(doc, indent=1) + "\n")
    print(f"figures in {path} (key spark_scan)")


def write_copies(source, folder, compression):
    """Writes `source` as a mosaicrs dataset and as Parquet; returns the paths by reader."""
    ours = f"mosaicrs ({compression})"
    paths = {
        ours: os.path.join(folder, "data.mosaicrs"),
        "parquet (snappy)": os.path.join(folder, "snappy.parquet"),
        "parquet (uncompressed)": os.path.join(folder, "plain.parquet"),
    }
    source.write.format("mosaicrs").mode("overwrite") \
        .option("compression", compression).save(paths[ours])
    source.write.mode("overwrite").parquet(paths["parquet (snappy)"])
    source.write.mode("overwrite").option("compression", "none") \
        .parquet(paths["parquet (uncompressed)"])
    return paths


def time_queries(spark, paths, queries, repeats):
    """Runs every query on every reader, alternating; returns times, answers and
    the scan partitions of each reader."""
    def frame(name):
        if name.startswith("mosaicrs"):
            return spark.read.format("mosaicrs").load(paths[name])
        return spark.read.parquet(paths[name])

    answers = {}
    times = {(q, r): [] for q in queries for r in paths}
    for repeat in range(repeats + 1):
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
    return times, answers, partitions


def main():
    args = parse_args()
    from pyspark.sql import functions as F

    queries = {
        "count()": lambda df: df.count(),
        f"sum of all {len(COLUMNS)} columns": lambda df: df.agg(
            *[F.sum(c) for c in COLUMNS]).collect(),
        f"max of all {len(COLUMNS)} columns": lambda df: df.agg(
            *[F.max(c) for c in COLUMNS]).collect(),
        "sum of 2 columns (id, f0)": lambda df: df.select("id", "f0").agg(
            F.sum("id"), F.sum("f0")).collect(),
    }
    load_start = os.getloadavg()
    spark = start_spark(args, "mosaicrs-spark-scan-bench")
    try:
        with workdir(args, "mosaicrs-scan-bench-") as folder:
            paths = write_copies(synthetic_frame(spark, args), folder, args.compression)
            times, answers, partitions = time_queries(spark, paths, queries, args.repeats)
    finally:
        spark.stop()

    for q, by_reader in answers.items():
        values = list(by_reader.values())
        # Float sums may differ in the last bits with the summation order.
        if q == "count()" or q.startswith("max"):
            assert all(v == values[0] for v in values), by_reader
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
    print(f"load average: {load_start[0]:.2f} at the start, {os.getloadavg()[0]:.2f} at the end")
    if args.json:
        record(args.json, args, load_start, partitions, times, queries, ours)


if __name__ == "__main__":
    main()
