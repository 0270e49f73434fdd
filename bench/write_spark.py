"""Write side: turn one cached Spark DataFrame into training data, several ways.

Runs in whichever venv holds the contender's package (the shared .venv for mosaicrs and
Parquet, `.venvs/streaming` for MDS, `.venvs/hf` for Hugging Face datasets); each needs
pyspark. In one process the shape's DataFrame is generated, cached and counted, then
every contender named on the command line writes it: first a warm-up write of a small
slice each (JIT, class loading, codegen), then `--reps` rounds in which each writes
all rows once, timed. The RSS of the whole process tree (this Python driver, the JVM
that is driver and executor in local mode, PySpark's Python workers) is sampled during
each timed write.

Writes one JSON document: {"session_s", "shapes": {NAME: {"cache_s", "contenders":
[{name, ok, rows, seconds[], best_s, rows_per_s, bytes_on_disk, files, memory, output},
...]}}}. Several shapes may share one session (the smoke run does, to save start-ups).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "spark"))

import procmem  # noqa: E402
from quiet_session import quiet_session  # noqa: E402
from shapes import SHAPES, Shape, generate  # noqa: E402

# A contender whose first timed write takes longer than this is not run again.
SLOW_S = 60.0


def dir_size(path: Path) -> tuple[int, int]:
    """Bytes and number of files under `path` (every file, Spark's .crc files included)."""
    total = files = 0
    for root, _dirs, names in os.walk(path):
        for name in names:
            total += os.path.getsize(os.path.join(root, name))
            files += 1
    return total, files


def _write_mosaicrs(compression: str):
    def run(df, out: Path, shape: Shape) -> None:
        df.write.format("mosaicrs").option("compression", compression).save(str(out))

    return run


def _write_mosaicrs_packed(df, out: Path, shape: Shape) -> None:
    """Row-major features: the scalar features packed into one column, or the
    embedding stored as a fixed-size list of its declared length."""
    if shape.is_array:
        layout = {"fixedLength.emb": str(shape.width)}
    else:
        layout = {"pack.features": ",".join(shape.feature_columns)}
    df.write.format("mosaicrs").options(**layout).save(str(out))


def _write_parquet(compression: str):
    def run(df, out: Path, shape: Shape) -> None:
        df.write.option("compression", compression).parquet(str(out))

    return run


def _mds_columns(shape: Shape) -> dict[str, str]:
    cols = {shape.label: "int64"}
    if shape.is_array:
        cols["emb"] = "ndarray:float32"
    else:
        cols.update({c: "float32" for c in shape.feature_columns})
    return cols


def _write_mds(compression: str | None):
    def run(df, out: Path, shape: Shape) -> None:
        from streaming.base.converters import dataframe_to_mds

        kwargs = {"out": str(out), "columns": _mds_columns(shape), "compression": compression}
        dataframe_to_mds(df, merge_index=True, mds_kwargs=kwargs)

    return run


def _write_hf(df, out: Path, shape: Shape) -> int:
    from datasets import Dataset

    return Dataset.from_spark(df, cache_dir=str(out), load_from_cache_file=False).num_rows


WRITERS = {
    "mosaicrs": _write_mosaicrs("none"),
    "mosaicrs-zstd": _write_mosaicrs("zstd"),
    "mosaicrs-packed": _write_mosaicrs_packed,
    "parquet": _write_parquet("snappy"),
    "parquet-none": _write_parquet("none"),
    "mds": _write_mds(None),
    "hf-datasets": _write_hf,
}


def spark_session(jar: str | None, app: str, conf: dict[str, str] | None = None):
    """A local[2] session; the connector jar goes on spark.jars when given, and
    `conf` on top of the suite's settings."""
    # Python workers run this contender's interpreter (it has the writer's
    # package), whatever the caller's environment says.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    suite = {
        "spark.driver.memory": "4g",
        "spark.sql.shuffle.partitions": "8",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
    }
    return quiet_session("local[2]", app, [jar] if jar else [], {**suite, **(conf or {})})


class Contender:
    """One writer's runs on one shape; a failure is kept as a result, not raised."""

    def __init__(self, name: str, shape: Shape, rows: int, work: Path) -> None:
        self.name, self.shape, self.rows = name, shape, rows
        self.writer = WRITERS[name]
        self.out = work / name
        self.seconds: list[float] = []
        self.memories: list[dict] = []
        self.error: dict | None = None

    def _guard(self, step) -> None:
        if self.error is not None:
            return
        try:
            step()
        except Exception as exc:  # a contender's failure is a result, not the suite's end
            self.error = {
                "error": f"{type(exc).__name__}: {exc}".strip()[:2000],
                "traceback": traceback.format_exc()[-4000:],
            }
            print(f"bench: write {self.name} failed: {self.error['error']}", file=sys.stderr)

    def warm_up(self, warm_df) -> None:
        """One untimed write of a small slice: JIT, class loading, codegen, imports."""

        def step():
            warm_out = self.out.with_name(self.name + ".warmup")
            shutil.rmtree(warm_out, ignore_errors=True)
            self.writer(warm_df, warm_out, self.shape)
            shutil.rmtree(warm_out, ignore_errors=True)

        self._guard(step)

    def timed_run(self, df) -> None:
        """One timed write of every row, RSS sampled; the output stays for the read side."""
        if self.seconds and self.seconds[0] > SLOW_S:
            return  # a slow contender's first run is long enough to stand alone

        def step():
            shutil.rmtree(self.out, ignore_errors=True)
            with procmem.PeakSampler() as sampler:
                started = time.perf_counter()
                reported = self.writer(df, self.out, self.shape)
                self.seconds.append(time.perf_counter() - started)
            if reported is not None and reported != self.rows:
                raise RuntimeError(f"reports {reported} rows written, expected {self.rows}")
            self.memories.append(sampler.result())

        self._guard(step)

    def result(self) -> dict:
        base = {"name": self.name, "rows": self.rows, "ok": False}
        if self.error is not None:
            return {**base, **self.error}
        best = min(self.seconds)
        size, files = dir_size(self.out)
        return {
            **base,
            "ok": True,
            "seconds": self.seconds,
            "best_s": best,
            "rows_per_s": self.rows / best,
            "bytes_on_disk": size,
            "files": files,
            "memory": max(self.memories, key=lambda m: m["peak_total_rss_bytes"]),
            "output": str(self.out),
        }


def shape_arg(text: str) -> tuple[Shape, int]:
    """`NAME=ROWS`, for --shape."""
    name, _, rows = text.partition("=")
    if name not in SHAPES or not rows.isdigit():
        raise argparse.ArgumentTypeError(f"want NAME=ROWS with NAME in {sorted(SHAPES)}: {text}")
    return SHAPES[name], int(rows)


def write_shape(spark, shape: Shape, rows: int, names: list[str], work: Path, args) -> dict:
    """Generate and cache one shape, run every writer on it, then drop the cache."""
    started = time.perf_counter()
    df = generate(spark, shape, rows).cache()
    counted = df.count()
    cache_s = time.perf_counter() - started
    if counted != rows:
        raise SystemExit(f"generated {counted} rows, expected {rows}")
    print(f"bench: {shape.name}: {counted:,} rows cached in {cache_s:.1f} s", file=sys.stderr)
    contenders = [Contender(name, shape, counted, work / shape.name) for name in names]
    if not args.no_warmup:
        warm_df = df.limit(max(1, min(rows // 20, 20_000)))
        for c in contenders:
            c.warm_up(warm_df)
    # Runs alternate between contenders, so a slow spell on the shared machine
    # does not fall on one contender's runs only.
    for _ in range(args.reps):
        for c in contenders:
            c.timed_run(df)
    results = [c.result() for c in contenders]
    for r in results:
        if r["ok"]:
            print(
                f"bench: {shape.name}: write {r['name']}: {r['rows_per_s']:,.0f} rows/s, "
                f"{r['bytes_on_disk'] / 2**20:.1f} MiB",
                file=sys.stderr,
            )
    df.unpersist(blocking=True)
    return {"cache_s": cache_s, "contenders": results}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=shape_arg, action="append", required=True,
                    help="NAME=ROWS; repeat for several shapes in one Spark session")
    ap.add_argument("--work", type=Path, required=True, help="folder for the outputs")
    ap.add_argument("--contenders", required=True, help="comma-separated writer names")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--no-warmup", action="store_true", help="skip the warm-up write")
    ap.add_argument("--jar", default=None, help="connector jar for format('mosaicrs')")
    ap.add_argument("--json", type=Path, required=True, help="where to write the results")
    args = ap.parse_args()

    names = args.contenders.split(",")
    unknown = [n for n in names if n not in WRITERS]
    if unknown:
        ap.error(f"unknown contender(s) {unknown}; known: {sorted(WRITERS)}")

    started = time.perf_counter()
    spark = spark_session(args.jar, "mosaicrs-bench")
    session_s = time.perf_counter() - started
    print(f"bench: Spark session in {session_s:.1f} s; writers {names}", file=sys.stderr)
    shapes = {
        shape.name: write_shape(spark, shape, rows, names, args.work, args)
        for shape, rows in args.shape
    }
    spark.stop()
    args.json.write_text(json.dumps({"session_s": session_s, "shapes": shapes}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
