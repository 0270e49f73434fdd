"""Spark write throughput: format("mosaicrs") against Spark's own Parquet writer.

Both write the same cached DataFrame (an id, 16 float columns and an int
label) in the same Spark session, alternating, after one untimed warm-up
write each. Prints rows/s per writer and the mosaicrs/Parquet ratio.

    .venv/bin/python bench/connector_write_bench.py [--rows 2000000] [--repeats 3]

Needs the connector jar of the running pyspark's line (`make jar`):
build/libs/mosaicrs-spark-3.5_2.12.jar or build/libs/mosaicrs-spark-4_2.13.jar.
"""

import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from spark_session import arg_parser, start_spark, synthetic_frame, workdir  # noqa: E402


def parse_args():
    p = arg_parser(__doc__.splitlines()[0])
    p.add_argument("--batch-rows", default=None, help="mosaicrs batchRows option")
    return p.parse_args()


def folder_bytes(path):
    total = 0
    for dirpath, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(dirpath, f)) for f in files)
    return total


def main():
    args = parse_args()
    spark = start_spark(args, "mosaicrs-connector-write-bench")
    df = synthetic_frame(spark, args)
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
    times = {name: [] for name in writers}
    sizes = {}
    try:
        with workdir(args, "mosaicrs-write-bench-") as folder:
            for repeat in range(args.repeats + 1):
                for i, (name, write) in enumerate(writers.items()):
                    out = os.path.join(folder, f"out{i}")
                    start = time.perf_counter()
                    write(out)
                    elapsed = time.perf_counter() - start
                    if repeat > 0:  # repeat 0 warms up the JIT and the page cache
                        times[name].append(elapsed)
                    sizes[name] = folder_bytes(out)
    finally:
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
