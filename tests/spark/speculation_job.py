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
from pyspark.sql import functions as F
from pyspark.sql.types import LongType

from quiet_session import quiet_session

ROWS = 4000
PARTITIONS = 4
STALL_AT = 900  # partition 0 holds ids 0..999; the stall comes after most are written


def main():
    master, jar, out, markers = sys.argv[1:5]
    spark = quiet_session(master, "mosaicrs-speculation-test", [jar], {
        "spark.speculation": "true",
        "spark.speculation.interval": "100ms",
        "spark.speculation.multiplier": "2",
        "spark.speculation.quantile": "0.5",
        "spark.speculation.minTaskRuntime": "1s",
        "spark.executor.memory": "512m",
        "spark.executor.cores": "1",
        "spark.cores.max": "2",
    })

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
