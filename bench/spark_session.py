"""What the Spark benches share: the connector jar, the common options, the
Spark session and the synthetic DataFrame (an id, 16 float columns and an int
label) that both the write and the scan bench time.
"""

import argparse
import contextlib
import os
import shutil
import sys
import tempfile

import pyspark

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "tests", "spark"))
from quiet_session import quiet_session  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The connector jar of the running pyspark's line (`make jar`).
JAR = os.path.join(ROOT, "build", "libs",
                   "mosaicrs-spark-3.5_2.12.jar" if pyspark.__version__.startswith("3.")
                   else "mosaicrs-spark-4_2.13.jar")
FLOATS = 16
COLUMNS = ["id", *[f"f{i}" for i in range(FLOATS)], "label"]


def arg_parser(description):
    """The options every Spark bench takes; a bench adds its own."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--rows", type=int, default=2_000_000)
    p.add_argument("--partitions", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--master", default="local[2]")
    p.add_argument("--compression", default="none", help="mosaicrs compression option")
    p.add_argument("--jar", default=JAR)
    p.add_argument("--workdir", default=None, help="where to write (default: a temp dir)")
    return p


def start_spark(args, app_name, conf=None):
    """A quiet Spark session with the connector jar and `conf` on top; exits when the jar is
    missing."""
    if not os.path.exists(args.jar):
        sys.exit(f"{args.jar} not found: run `make jar` first")
    return quiet_session(args.master, app_name, [args.jar],
                         {"spark.driver.memory": "4g", **(conf or {})})


def synthetic_frame(spark, args):
    """`args.rows` rows of COLUMNS in `args.partitions` partitions."""
    from pyspark.sql import functions as F

    return spark.range(0, args.rows, numPartitions=args.partitions).select(
        F.col("id"),
        *[F.rand(seed=i).cast("float").alias(f"f{i}") for i in range(FLOATS)],
        (F.col("id") % 10).cast("int").alias("label"),
    )


@contextlib.contextmanager
def workdir(args, prefix):
    """`args.workdir`, or a temp folder removed afterwards."""
    path = args.workdir or tempfile.mkdtemp(prefix=prefix)
    try:
        yield path
    finally:
        if args.workdir is None:
            shutil.rmtree(path, ignore_errors=True)
