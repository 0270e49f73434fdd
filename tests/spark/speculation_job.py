"""A write with speculative execution, run by test_connector_failures.py
against a small standalone cluster (two workers on distinct loopback hosts,
since Spark never runs a speculative copy on the host of the original).

Partition 0's first attempt writes most of its rows, then stalls; Spark
launches a speculative copy on the other worker, commits that one and kills
the original. Marker files record what ran.

    python speculation_job.py MASTER_URL CONNECTOR_JAR OUTPUT_DIR MARKER_DIR
"""

import os
import sys
import time

from pyspark import TaskContext
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import LongType

ROWS = 4000
PARTITIONS = 4
STALL_AT = 900  # partition 0 holds ids 0..999; the stall comes after most are written


def main():
    master, jar, out, markers = sys.argv[1:5]
    spark = (
        SparkSession.builder.master(master)
        .appName("mosaicrs-speculation-test")
        .config("spark.jars", jar)
        .config("spark.speculation", "true")
        .config("spark.speculation.interval", "100ms")
        .config("spark.speculation.multiplier", "2")
        .config("spark.speculation.quantile", "0.5")
        .config("spark.speculation.minTaskRuntime", "1s")
        .config("spark.executor.memory", "512m")
        .config("spark.executor.cores", "1")
        .config("spark.cores.max", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )

    def stall_first_attempt(i):
        ctx = TaskContext.get()
        if ctx.partitionId() == 0 and i == STALL_AT:
            attempt = ctx.attemptNumber()
            open(os.path.join(markers, f"p0-attempt{attempt}-task{ctx.taskAttemptId()}"), "w").close()
            if attempt == 0:
                time.sleep(120)  # the speculative copy finishes long before
        return i

    udf = F.udf(stall_first_attempt, LongType())
    df = spark.range(0, ROWS, numPartitions=PARTITIONS).select(
        udf(F.col("id")).alias("id"), (F.col("id") * 2).alias("twice"))
    df.write.format("mosaicrs").option("batchRows", "50").option("shardSize", "2k").save(out)
    spark.stop()


if __name__ == "__main__":
    main()
