"""Fixtures of the Spark connector tests: the real connector jar and one
shared local SparkSession.

The tests run under whichever pyspark the interpreter has: the project's
.venv (Spark 4.0) or a per-release venv from scripts/spark_venvs.sh
(`make test-spark` runs them all). The jar is the one built for that line:
mosaicrs-spark-3.5_2.12.jar for Spark 3.5, mosaicrs-spark-4_2.13.jar for
Spark 4.x. The session runs `local[2,4]`: two task threads, and up to four
attempts per task, so that a task failing on its first attempt is retried.
The jars are built by `make jar` (gradle); the tests fail, not skip, without
them.
"""

import json
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pyspark
import pytest

from .quiet_session import quiet_session

REPO = Path(__file__).resolve().parents[2]
LIBS = REPO / "build" / "libs"
SPARK_VERSION = tuple(int(p) for p in pyspark.__version__.split(".")[:2])
JAR_FOR_LINE = {3: "mosaicrs-spark-3.5_2.12.jar", 4: "mosaicrs-spark-4_2.13.jar"}
CONNECTOR_JAR = LIBS / JAR_FOR_LINE[SPARK_VERSION[0]]
OTHER_JAR = LIBS / JAR_FOR_LINE[7 - SPARK_VERSION[0]]
EXAMPLES_JAR = LIBS / "mosaicrs-examples.jar"
SPARK_4 = SPARK_VERSION >= (4, 0)


@pytest.fixture(scope="session")
def connector_jar() -> Path:
    if not CONNECTOR_JAR.exists():
        pytest.fail(f"{CONNECTOR_JAR} is missing: run `make jar` first")
    return CONNECTOR_JAR


@pytest.fixture(scope="session")
def spark(connector_jar):
    # Python workers run this interpreter (its pyspark, numpy), not whatever
    # `python3` is on PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

    session = quiet_session("local[2,4]", "mosaicrs-connector-tests", [connector_jar], {
        "spark.sql.shuffle.partitions": "4",
        "spark.driver.memory": "2g",
    })
    yield session
    session.stop()


def load_index(dataset: Path) -> dict:
    return json.loads((dataset / "index.json").read_text())


def kept_shards(dataset: Path) -> set:
    """Shards that the head or a kept version record lists."""
    indexes = [dataset / "index.json", *sorted((dataset / "_versions").glob("*.json"))]
    return {s["path"] for i in indexes for s in json.loads(i.read_text())["shards"]}


def stray_files(dataset: Path) -> list:
    """Files in the dataset folder that no kept version lists (orphans)."""
    return sorted(set(os.listdir(dataset)) - kept_shards(dataset) - {"index.json", "_versions"})


def wait_for_no_strays(dataset: Path, seconds: float = 30.0) -> list:
    """Killed task attempts clean up after the job returns; give them time."""
    deadline = time.monotonic() + seconds
    while True:
        strays = stray_files(dataset)
        if not strays or time.monotonic() > deadline:
            return strays
        time.sleep(0.2)


def jobs_run_in_group(spark, group: str) -> list:
    """Spark job ids started under job group `group` (none = nothing ran)."""
    return list(spark.sparkContext.statusTracker().getJobIdsForGroup(group))


@contextmanager
def job_group(spark, group: str):
    """Runs the block's Spark jobs under job group `group`."""
    sc = spark.sparkContext
    sc.setJobGroup(group, group)
    try:
        yield
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
        sc.setLocalProperty("spark.job.description", None)
