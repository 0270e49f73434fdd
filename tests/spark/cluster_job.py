"""A Spark application for the cluster test, run with the test's Python:
writes a training dataset to S3 through a standalone cluster with the
mosaicrs connector, killing one executor (SIGKILL) in the middle of the
write, then reads the dataset back through the cluster. Prints one JSON
line with what it saw.

    python cluster_job.py MASTER JAR URL STORAGE_JSON MARKERS_DIR ROWS
"""

import json
import os
import signal
import sys
from pathlib import Path

from pyspark import TaskContext
from pyspark.sql import functions as F
from pyspark.sql.types import LongType

from quiet_session import quiet_session


def executor_pid() -> int:
    """The pid of the executor JVM that runs this Python worker: the nearest
    ancestor whose command line is Spark's CoarseGrainedExecutorBackend."""
    pid = os.getpid()
    while pid > 1:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        if b"CoarseGrainedExecutorBackend" in cmdline:
            return pid
        stat = Path(f"/proc/{pid}/stat").read_text()
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    raise RuntimeError("no executor JVM among this worker's ancestors")


def main():
    master, jar, url, storage_json, markers, rows = sys.argv[1:7]
    rows = int(rows)
    storage = json.loads(storage_json)
    spark = quiet_session(master, "mosaicrs-cluster-test", [jar], {
        "spark.executor.memory": "1g",
        "spark.executor.cores": "1",
        "spark.task.maxFailures": "6",
    })
    marker_dir = Path(markers)

    def kill_executor_once(i):
        ctx = TaskContext.get()
        # Partition 2, first attempt, past its first shards: the executor
        # dies with files of this attempt already uploaded.
        if ctx.partitionId() == 2 and ctx.attemptNumber() == 0 and i == 2 * rows // 6 + rows // 8:
            (marker_dir / f"killed-executor-p2-a0-pid{executor_pid()}").touch()
            os.kill(executor_pid(), signal.SIGKILL)
        return i

    kill = F.udf(kill_executor_once, LongType())
    df = spark.range(0, rows, numPartitions=6).select(kill(F.col("id")).alias("id")).select(
        "id",
        *[(F.sin(F.col("id") * (k + 1)) * 0.5).cast("float").alias(f"x{k}") for k in range(4)],
    ).withColumn("label", (F.col("x0") + F.col("x1") > 0).cast("int"))
    writer = df.write.format("mosaicrs").mode("overwrite") \
        .option("shardSize", "64k").option("batchRows", "512")
    for key, value in storage.items():
        writer = writer.option(f"storage.{key}", value)
    writer.save(url)

    reader = spark.read.format("mosaicrs")
    for key, value in storage.items():
        reader = reader.option(f"storage.{key}", value)
    back = reader.load(url)
    result = back.agg(F.count("*").alias("rows"), F.sum("id").alias("id_sum"),
                      F.countDistinct("id").alias("distinct_ids")).first().asDict()
    result["executors"] = sorted(
        {e.host() for e in spark.sparkContext._jsc.sc().statusTracker().getExecutorInfos()})
    print("RESULT " + json.dumps(result), flush=True)
    spark.stop()


if __name__ == "__main__":
    main()
