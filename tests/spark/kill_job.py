"""Writes one dataset again and again until it is killed, for
test_connector_kill.py.

Write w holds the ids [w * ROWS, (w + 1) * ROWS) in PARTITIONS partitions, so
a dataset names the writes it holds. In `overwrite` mode every write replaces
the last; in `append` mode each adds to it. After each save returns the job
prints `committed w`. The driver's V2 write logs "is committing" just before
the connector's commit, which lets the test aim its kill at the commit.

    python kill_job.py CONNECTOR_JAR OUTPUT_DIR overwrite|append
"""

import sys

ROWS = 600
PARTITIONS = 24  # many shards: an overwrite's commit then has files to delete


def main():
    from quiet_session import quiet_session  # run as a script: this folder is on sys.path

    jar, out, mode = sys.argv[1:4]
    spark = quiet_session("local[2]", "mosaicrs-kill-test", [jar])
    # Only the V2 write nodes at INFO: their "is committing" line marks the
    # moment the driver starts the commit.
    jvm = spark.sparkContext._jvm
    jvm.org.apache.logging.log4j.core.config.Configurator.setLevel(
        "org.apache.spark.sql.execution.datasources.v2",
        jvm.org.apache.logging.log4j.Level.INFO)
    write = 0
    while True:
        df = spark.range(write * ROWS, (write + 1) * ROWS, numPartitions=PARTITIONS)
        df.write.format("mosaicrs").mode(mode if write else "overwrite").save(out)
        print(f"committed {write}", flush=True)
        write += 1


if __name__ == "__main__":
    main()
