"""The jar-free writer, `df.write.format("mosaicrs_py")` (Spark 4's Python
data source API): values, save modes, options, and exactly-once under
injected task failures, as test_connector_failures.py checks the JVM one."""

import os

import pyarrow as pa
import pytest
from pyspark.sql import functions as F

from .conftest import load_index, stray_files, wait_for_no_strays
from .readback import assert_dataset_equals
from .test_connector_failures import (
    assert_failed_jobs_change_nothing, assert_one_attempt_per_partition, failing_udf, frame)

mosaicrs = pytest.importorskip("mosaicrs", reason="run `make python` to install the wheel")
from mosaicrs.spark import FORMAT, register  # noqa: E402


def check_with_rust_reader(path, rows):
    """The Rust reader opens the dataset, counts `rows` and verifies every checksum."""
    ds = mosaicrs.Dataset(path)
    assert len(ds) == rows
    ds.verify()


def session_without_jar_requirement(request):
    """The shared session (with the connector jar) when the jar is built;
    otherwise a session of the same shape without it: this writer needs no jar."""
    from .conftest import CONNECTOR_JAR

    if CONNECTOR_JAR.exists():
        spark = request.getfixturevalue("spark")
    else:
        from pyspark.sql import SparkSession

        spark = (SparkSession.builder.master("local[2,4]").appName("mosaicrs-python-datasource")
                 .config("spark.ui.enabled", "false")
                 .config("spark.ui.showConsoleProgress", "false")
                 .config("spark.sql.shuffle.partitions", "4").getOrCreate())
        spark.sparkContext.setLogLevel("ERROR")
    register(spark)
    return spark


@pytest.fixture(scope="module")
def pyds(request):
    return session_without_jar_requirement(request)


def test_values_and_options(pyds, tmp_path):
    df = pyds.range(0, 5000, numPartitions=4).select(
        "id", (F.col("id") * 0.25).alias("x"), F.concat(F.lit("s"), F.col("id")).alias("s"),
        F.array(F.col("id").cast("float"), F.lit(1.0).cast("float")).alias("emb"))
    out = tmp_path / "vals"
    df.write.format(FORMAT).mode("overwrite").option("shardSize", "16k") \
        .option("batchRows", "500").option("compression", "lz4") \
        .option("metadata.run", "py-nightly").save(str(out))
    assert_dataset_equals(df, out)
    check_with_rust_reader(out, 5000)
    commit = mosaicrs.log(out)[0]
    assert commit.metadata == {"run": "py-nightly"}
    assert commit.writer["engine"] == "spark" and commit.writer["connector"] == FORMAT
    index = load_index(out)
    assert len(index["shards"]) > 4
    assert {s["compression"] for s in index["shards"]} == {"lz4"}
    table = pa.table(mosaicrs.Dataset(out)).sort_by("id")
    assert table.column("s")[4999].as_py() == "s4999"
    assert stray_files(out) == []


def test_save_modes(pyds, tmp_path):
    out = str(tmp_path / "modes")
    a = pyds.range(0, 100, numPartitions=2)
    b = pyds.range(100, 150, numPartitions=2)

    def ids():
        return sorted(pa.table(mosaicrs.Dataset(out)).column("id").to_pylist())

    a.write.format(FORMAT).mode("append").save(out)  # creates
    assert ids() == list(range(100))
    with pytest.raises(Exception, match="already exists"):
        b.write.format(FORMAT).mode("append").option("saveMode", "error").save(out)
    b.write.format(FORMAT).mode("append").option("saveMode", "ignore").save(out)
    assert ids() == list(range(100))
    b.write.format(FORMAT).mode("append").save(out)
    assert ids() == list(range(150))
    b.write.format(FORMAT).mode("overwrite").save(out)
    assert ids() == list(range(100, 150))
    assert wait_for_no_strays(tmp_path / "modes") == []
    with pytest.raises(Exception, match="unknown mosaicrs_py option"):
        b.write.format(FORMAT).mode("append").option("shardsize2", "1").save(out)
    with pytest.raises(Exception, match="compression"):
        b.write.format(FORMAT).mode("append").option("compression", "gzip").save(out)
    with pytest.raises(Exception, match="append"):
        pyds.range(3).selectExpr("cast(id as string) as id").write.format(FORMAT) \
            .mode("append").save(out)


def test_task_failing_on_first_attempt_is_retried_exactly_once(pyds, tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    udf = failing_udf(markers, {1, 3}, lambda p: p * 3000 + 2500)
    out = tmp_path / "retried"
    frame(pyds, udf).write.format(FORMAT).mode("overwrite").option("batchRows", "100") \
        .option("shardSize", "4k").save(str(out))

    assert sorted(os.listdir(markers)) == ["failed-p1-a0", "failed-p3-a0"]
    expected = pyds.range(0, 12000, numPartitions=4).select(
        "id", (F.col("id") * 0.25).alias("x"))
    assert_dataset_equals(expected, out)
    check_with_rust_reader(out, 12000)
    assert wait_for_no_strays(out) == []
    assert_one_attempt_per_partition(out, 4)


def test_failed_job_leaves_the_previous_dataset_intact(pyds, tmp_path):
    out = tmp_path / "kept"
    markers = tmp_path / "markers"
    markers.mkdir()
    # Through a UDF that never fails, so the schema (nullable id) is the failing job's.
    never = failing_udf(markers, set(), lambda p: -1)
    previous = frame(pyds, never, rows=777, partitions=3)
    previous.write.format(FORMAT).mode("overwrite").save(str(out))
    assert_failed_jobs_change_nothing(pyds, FORMAT, markers, previous, out)
