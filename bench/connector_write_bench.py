"""Spark write throughput: format("mosaicrs") against Spark's `noop` floor and Parquet.

Every writer writes the same cached DataFrame (an id, 16 float columns and an
int label) in the same Spark session. Spark's own `noop` writer iterates the
rows and writes nothing: the floor that no writer can beat. One untimed
warm-up write each, then `--repeats` rounds that run the writers in turn
(the order rotates each round). Prints rows/s per writer (best and median)
and each writer's ratio to `noop`, and `--json` records them under the key
`spark_write`. On a loaded machine wall times swing with the load; so the
bench also sums the CPU time of the task threads (`Executor task launch
worker`, from /proc, local mode only) over each write, and prints the ratio of
CPU time per row against `noop`'s, which the load barely moves.

    .venv/bin/python bench/connector_write_bench.py [--rows 2000000] [--repeats 3]

`--conf KEY=VALUE` adds Spark settings, e.g. a JFR recording of the driver
(local mode runs the tasks there):

    --conf spark.driver.extraJavaOptions=-XX:StartFlightRecording=filename=/tmp/w.jfr

Needs the connector jar of the running pyspark's line (`make jar`):
build/libs/mosaicrs-spark-3.5_2.12.jar or build/libs/mosaicrs-spark-4_2.13.jar.
"""

import datetime
import json
import os
import statistics
import sys
import time
from typing import Callable, Dict, List

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from spark_session import arg_parser, start_spark, synthetic_frame, workdir  # noqa: E402

NOOP = "noop (Spark's floor)"


def parse_args():
    p = arg_parser(__doc__.splitlines()[0])
    p.add_argument("--batch-rows", default=None, help="mosaicrs batchRows option")
    p.add_argument("--only", default=None,
                   help="comma-separated writer prefixes to run (noop, parquet, mosaicrs)")
    p.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE",
                   help="extra Spark setting (repeatable)")
    p.add_argument("--json", default=None, help="results.json to update (key spark_write)")
    return p.parse_args()


def folder_bytes(path: str) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(dirpath, f)) for f in files)
    return total


def task_cpu_seconds(pid: int) -> Dict[int, float]:
    """CPU seconds (user + system) of each task thread of JVM `pid`, by thread id."""
    ticks = os.sysconf("SC_CLK_TCK")
    out: Dict[int, float] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        if name.startswith("Executor task"):
            fields = stat[stat.rindex(")") + 2:].split()
            out[int(tid)] = (int(fields[11]) + int(fields[12])) / ticks
    return out


def cpu_used(before: Dict[int, float], after: Dict[int, float]) -> float:
    return sum(v - before.get(tid, 0.0) for tid, v in after.items())


def main():
    args = parse_args()
    extra = dict(kv.split("=", 1) for kv in args.conf)
    load_start = open("/proc/loadavg").read().split()[:3]
    spark = start_spark(args, "mosaicrs-connector-write-bench", extra)
    import pyspark

    jvm_pid = spark._jvm.java.lang.ProcessHandle.current().pid() if args.master.startswith(
        "local") else None
    df = synthetic_frame(spark, args)
    df = df.cache()
    assert df.count() == args.rows

    mosaicrs_options = {"compression": args.compression}
    if args.batch_rows:
        mosaicrs_options["batchRows"] = args.batch_rows
    writers: Dict[str, Callable[[str], None]] = {
        NOOP: lambda out: df.write.format("noop").mode("overwrite").save(),
        "parquet (snappy, Spark default)": lambda out: df.write.mode("overwrite").parquet(out),
        "parquet (uncompressed)": lambda out: df.write.mode("overwrite")
        .option("compression", "none")
        .parquet(out),
        f"mosaicrs ({args.compression})": lambda out: df.write.format("mosaicrs")
        .mode("overwrite")
        .options(**mosaicrs_options)
        .save(out),
    }
    if args.only:
        keep = args.only.split(",")
        writers = {k: v for k, v in writers.items() if any(k.startswith(p) for p in keep)}
    names = list(writers)
    times: Dict[str, List[float]] = {name: [] for name in names}
    cpu: Dict[str, List[float]] = {name: [] for name in names}
    sizes: Dict[str, int] = {}
    try:
        with workdir(args, "mosaicrs-write-bench-") as folder:
            for repeat in range(args.repeats + 1):
                # Round 0 warms up the JIT and the page cache; later rounds rotate the order.
                order = names[repeat % len(names):] + names[:repeat % len(names)]
                for name in order:
                    out = os.path.join(folder, f"out{names.index(name)}")
                    cpu_before = task_cpu_seconds(jvm_pid) if jvm_pid else {}
                    start = time.perf_counter()
                    writers[name](out)
                    elapsed = time.perf_counter() - start
                    cpu_after = task_cpu_seconds(jvm_pid) if jvm_pid else {}
                    if repeat > 0:
                        times[name].append(elapsed)
                        cpu[name].append(cpu_used(cpu_before, cpu_after))
                    elif os.path.exists(out):
                        # One write's size: an overwrite keeps the earlier versions.
                        sizes[name] = folder_bytes(out)
                    else:
                        sizes[name] = 0
    finally:
        spark.stop()
    load_end = open("/proc/loadavg").read().split()[:3]

    cores = os.cpu_count()
    print(
        f"\nSpark {pyspark.__version__} write of {args.rows:,} rows (id, 16 float, int label), "
        f"{args.partitions} partitions, {args.master}, {cores} CPUs, {args.repeats} rounds; "
        f"load average {' '.join(load_start)} at start, {' '.join(load_end)} at end"
    )
    print(f"{'writer':36} {'best s':>8} {'median s':>9} {'rows/s':>12} {'MB on disk':>11} "
          f"{'/ noop':>7} {'task CPU s':>11} {'CPU / noop':>11}")
    rates = {name: args.rows / min(ts) for name, ts in times.items()}
    # Median task CPU seconds per write; noop's over a writer's is the CPU-time ratio.
    cpus = {name: statistics.median(c) for name, c in cpu.items() if c}
    floor = rates.get(NOOP)
    for name, ts in times.items():
        ratio = f"{rates[name] / floor:6.2f}x" if floor else "      -"
        cpu_ratio = (f"{cpus[NOOP] / cpus[name]:10.2f}x"
                     if cpus.get(NOOP) and cpus.get(name) else "          -")
        print(
            f"{name:36} {min(ts):8.2f} {statistics.median(ts):9.2f} "
            f"{rates[name]:12,.0f} {sizes[name] / 1e6:11.1f} {ratio} "
            f"{cpus.get(name, float('nan')):11.2f} {cpu_ratio}"
        )
    ours = f"mosaicrs ({args.compression})"
    for name in rates:
        if floor and name != NOOP:
            by_cpu = (f", by task CPU time {cpus[NOOP] / cpus[name]:.2f}x"
                      if cpus.get(NOOP) and cpus.get(name) else "")
            print(f"ratio {name.split(' (')[0] if name == ours else name} / noop: "
                  f"{rates[name] / floor:.2f}x{by_cpu}")
    if args.json:
        record_json(args, pyspark.__version__, times, cpus, rates, sizes, load_start, load_end)


def record_json(args, version, times, cpus, rates, sizes, load_start, load_end):
    """Updates `spark_write.<Spark version>` of `args.json`, keeping its other keys."""
    results = {}
    if os.path.exists(args.json):
        with open(args.json) as f:
            results = json.load(f)
    floor = rates.get(NOOP)
    section = results.setdefault("spark_write", {})
    section[version] = {
        "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "rows": args.rows,
        "partitions": args.partitions,
        "master": args.master,
        "rounds": args.repeats,
        "load_average_start": [float(x) for x in load_start],
        "load_average_end": [float(x) for x in load_end],
        "writers": {
            name: {
                "best_s": round(min(ts), 3),
                "median_s": round(statistics.median(ts), 3),
                "rows_per_s": round(rates[name]),
                "bytes_on_disk": sizes[name],
                "ratio_to_noop": round(rates[name] / floor, 3) if floor else None,
                "task_cpu_s_median": round(cpus[name], 3) if name in cpus else None,
                "cpu_ratio_to_noop": round(cpus[NOOP] / cpus[name], 3)
                if cpus.get(NOOP) and cpus.get(name) else None,
            }
            for name, ts in times.items()
        },
    }
    with open(args.json, "w") as f:
        json.dump(results, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
