"""Exactly once under failures: retried tasks, speculative attempts and
failed jobs leave exactly the right rows and no orphan files."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pyspark import TaskContext
from pyspark.sql import functions as F
from pyspark.sql.types import LongType

from .conftest import load_index, stray_files, wait_for_no_strays
from .readback import assert_dataset_equals, check_with_rust_reader, read_table

HERE = Path(__file__).resolve().parent


def failing_udf(markers: Path, partitions, row_id, every_attempt=False):
    """A UDF that raises at `row_id` in `partitions` on the first attempt
    (or on every attempt), leaving a marker file each time it raises."""

    def fail_once(i):
        ctx = TaskContext.get()
        if ctx.partitionId() in partitions and i == row_id(ctx.partitionId()) and (
                every_attempt or ctx.attemptNumber() == 0):
            name = f"failed-p{ctx.partitionId()}-a{ctx.attemptNumber()}"
            (markers / name).touch()
            raise RuntimeError(f"injected failure in {name}")
        return i

    return F.udf(fail_once, LongType())


def frame(spark, udf, rows=12000, partitions=4):
    return spark.range(0, rows, numPartitions=partitions).select(
        udf(F.col("id")).alias("id"), (F.col("id") * 0.25).alias("x"))


def test_task_failing_on_first_attempt_is_retried_exactly_once(spark, mosaicrs_cli, tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    # Partitions 1 and 3 hold ids 3000..5999 and 9000..11999; they fail late,
    # after several shards of the first attempt were sealed (small shards).
    udf = failing_udf(markers, {1, 3}, lambda p: p * 3000 + 2500)
    out = tmp_path / "retried"
    frame(spark, udf).write.format("mosaicrs").option("batchRows", "100") \
        .option("shardSize", "4k").save(str(out))

    assert sorted(os.listdir(markers)) == ["failed-p1-a0", "failed-p3-a0"]
    expected = spark.range(0, 12000, numPartitions=4).select(
        "id", (F.col("id") * 0.25).alias("x"))
    assert_dataset_equals(expected, out)
    check_with_rust_reader(mosaicrs_cli, out, 12000)
    assert wait_for_no_strays(out) == []
    assert_one_attempt_per_partition(out, 4)


def assert_one_attempt_per_partition(out, partitions):
    """Each of the `partitions` partitions' shards at `out` come from one attempt only."""
    attempts = {}
    for shard in load_index(out)["shards"]:
        attempts.setdefault(shard["partition"], set()).add(shard["task_attempt"])
    assert sorted(attempts) == list(range(partitions))
    assert all(len(a) == 1 for a in attempts.values())


def test_failed_job_leaves_the_previous_dataset_intact(spark, mosaicrs_cli, tmp_path):
    out = tmp_path / "kept"
    previous = spark.range(0, 777, numPartitions=3).select("id", (F.col("id") * 0.25).alias("x"))
    previous.write.format("mosaicrs").save(str(out))
    markers = tmp_path / "markers"
    markers.mkdir()
    assert_failed_jobs_change_nothing(spark, "mosaicrs", markers, previous, out)
    check_with_rust_reader(mosaicrs_cli, out, 777)


def assert_failed_jobs_change_nothing(spark, format_name, markers, previous, out):
    """An overwrite and an append through `format_name` whose partition 2
    fails on every attempt leave the dataset `previous` at `out` as it was:
    the same index bytes, the same files, the same rows."""
    index_before = (out / "index.json").read_bytes()
    files_before = sorted(os.listdir(out))
    udf = failing_udf(markers, {2}, lambda p: p * 3000 + 2900, every_attempt=True)
    for mode in ["overwrite", "append"]:
        with pytest.raises(Exception, match="injected failure"):
            frame(spark, udf).write.format(format_name).mode(mode) \
                .option("batchRows", "100").option("shardSize", "4k").save(str(out))

    # Every one of the 4 attempts of partition 2 failed, in both jobs.
    assert len(os.listdir(markers)) == 4
    assert (out / "index.json").read_bytes() == index_before
    assert wait_for_no_strays(out) == []
    assert sorted(os.listdir(out)) == files_before
    assert_dataset_equals(previous, out)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def standalone_cluster(tmp_path_factory):
    """A Spark standalone master and two 1-core workers on distinct loopback
    hosts: Spark never runs a speculative copy on the host of the original
    attempt, so local mode cannot speculate."""
    import pyspark

    spark_home = os.path.dirname(pyspark.__file__)
    work = tmp_path_factory.mktemp("cluster")
    env = {**os.environ, "SPARK_HOME": spark_home, "PYSPARK_PYTHON": sys.executable,
           "SPARK_NO_DAEMONIZE": "1"}
    spark_class = os.path.join(spark_home, "bin", "spark-class")
    port = free_port()
    master = f"spark://127.0.0.1:{port}"
    procs = []

    def start(name, *args):
        log = open(work / f"{name}.log", "w")
        procs.append(subprocess.Popen([spark_class, *args], env=env, stdout=log,
                                      stderr=subprocess.STDOUT))

    try:
        start("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
              "--port", str(port), "--webui-port", "0")
        for i, host in enumerate(["127.0.0.2", "127.0.0.3"]):
            (work / f"worker{i}").mkdir()
            start(f"worker{i}", "org.apache.spark.deploy.worker.Worker", "--host", host,
                  "--cores", "1", "--memory", "1g", "--webui-port", "0",
                  "--work-dir", str(work / f"worker{i}"), master)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            text = (work / "master.log").read_text()
            if text.count("Registering worker") >= 2:
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"standalone cluster did not start:\n{(work / 'master.log').read_text()}")
        yield master, env, work
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_speculative_attempts_leave_exactly_one_copy(standalone_cluster, connector_jar,
                                                     mosaicrs_cli, tmp_path):
    master, env, _ = standalone_cluster
    out = tmp_path / "speculated"
    markers = tmp_path / "markers"
    markers.mkdir()
    job = subprocess.run(
        [sys.executable, str(HERE / "speculation_job.py"), master, str(connector_jar),
         str(out), str(markers)],
        env=env, capture_output=True, text=True, timeout=300)
    assert job.returncode == 0, job.stdout + job.stderr

    # Partition 0's original attempt stalled; a speculative copy (attempt 1)
    # ran on the other worker and was the one committed.
    ran = sorted(os.listdir(markers))
    assert [m.split("-")[1] for m in ran] == ["attempt0", "attempt1"], ran
    speculative_task = int(ran[1].split("task")[1])
    p0 = {s["task_attempt"] for s in load_index(out)["shards"] if s["partition"] == 0}
    assert p0 == {speculative_task}

    check_with_rust_reader(mosaicrs_cli, out, 4000)
    # The killed original deletes its shards when Spark aborts it.
    assert wait_for_no_strays(out, seconds=60) == []
    table = read_table(out)
    ids = sorted(table.column("id").to_pylist())
    assert ids == list(range(4000))
    assert table.column("twice").to_pylist() == [2 * i for i in table.column("id").to_pylist()]
