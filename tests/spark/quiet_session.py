"""The one way the connector's tests, test jobs and benches start Spark: a
session with the UI and the progress bar off, logging at ERROR, the given jars
on `spark.jars` and the given settings on top.

Test jobs run as scripts (`python tests/spark/cluster_job.py ...`) have this
folder on `sys.path` and import it as `quiet_session`; the benches put it
there themselves.
"""


def quiet_session(master, app, jars=(), conf=None):
    """`SparkSession.builder` with these settings, `getOrCreate()`d."""
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.master(master)
        .appName(app)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
    )
    if jars:
        builder = builder.config("spark.jars", ",".join(str(j) for j in jars))
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
