"""The four save modes with plain df.write.format("mosaicrs").save(path)."""

import os

import pytest
from py4j.protocol import Py4JJavaError
from pyspark.errors import IllegalArgumentException
from pyspark.sql import functions as F

from .conftest import job_group, jobs_run_in_group, load_index, stray_files
from .readback import assert_dataset_equals, check_with_rust_reader


def frame(spark, start, stop, partitions=3):
    return spark.range(start, stop, numPartitions=partitions).select(
        "id", (F.col("id") * 1.5).alias("x"), (F.col("id") % 3).cast("int").alias("label"))


def snapshot(dataset):
    """The index bytes and the file listing: what must not change."""
    return (dataset / "index.json").read_bytes(), sorted(os.listdir(dataset))


def test_default_mode_creates_then_refuses_an_existing_dataset(spark, mosaicrs_cli, tmp_path):
    out = tmp_path / "ds"
    first = frame(spark, 0, 500)
    first.write.format("mosaicrs").save(str(out))
    assert_dataset_equals(first, out)
    before = snapshot(out)

    # Spark's CreateTableAsSelect refuses it (TABLE_OR_VIEW_ALREADY_EXISTS), naming the path.
    with job_group(spark, "error-if-exists"), \
            pytest.raises(Exception, match="already exists") as failure:
        frame(spark, 500, 600).write.format("mosaicrs").save(str(out))
    assert str(out) in str(failure.value)
    assert jobs_run_in_group(spark, "error-if-exists") == []
    assert snapshot(out) == before
    check_with_rust_reader(mosaicrs_cli, out, 500)


def test_append_adds_rows_and_keeps_the_old_shards(spark, mosaicrs_cli, tmp_path):
    out = tmp_path / "ds"
    frame(spark, 0, 400).write.format("mosaicrs").save(str(out))
    old_shards = {s["path"] for s in load_index(out)["shards"]}

    frame(spark, 400, 1000, partitions=4).write.format("mosaicrs").mode("append").save(str(out))

    index = load_index(out)
    assert old_shards <= {s["path"] for s in index["shards"]}
    assert len(index["writes"]) == 2
    assert_dataset_equals(frame(spark, 0, 1000), out)
    check_with_rust_reader(mosaicrs_cli, out, 1000)
    assert stray_files(out) == []


def assert_creates(spark, mode, out, rows):
    """A save in `mode` to the empty location `out` creates a dataset of `rows` rows."""
    frame(spark, 0, rows).write.format("mosaicrs").mode(mode).save(str(out))
    assert_dataset_equals(frame(spark, 0, rows), out)


def test_append_to_a_missing_dataset_creates_it(spark, tmp_path):
    assert_creates(spark, "append", tmp_path / "new", 50)


def test_append_with_another_schema_fails_before_any_task(spark, tmp_path):
    out = tmp_path / "ds"
    frame(spark, 0, 100).write.format("mosaicrs").save(str(out))
    before = snapshot(out)

    other = frame(spark, 100, 200).withColumn("label", F.col("label").cast("string"))
    # The native library's SchemaMismatch arrives as MosaicrsInvalidInputException,
    # an IllegalArgumentException.
    with job_group(spark, "append-mismatch"), \
            pytest.raises(IllegalArgumentException, match="cannot append") as failure:
        other.write.format("mosaicrs").mode("append").save(str(out))
    assert "label" in str(failure.value)
    assert jobs_run_in_group(spark, "append-mismatch") == []
    assert snapshot(out) == before


def test_overwrite_replaces_the_dataset_and_keeps_old_shards_for_version_0(
        spark, mosaicrs_cli, tmp_path):
    out = tmp_path / "ds"
    frame(spark, 0, 800, partitions=4).write.format("mosaicrs").save(str(out))
    old_files = set(os.listdir(out)) - {"index.json", "_versions"}

    # A different schema is fine for overwrite.
    replacement = spark.range(0, 300, numPartitions=2).select(
        "id", F.concat(F.lit("v"), F.col("id").cast("string")).alias("name"))
    replacement.write.format("mosaicrs").mode("overwrite").save(str(out))

    assert_dataset_equals(replacement, out)
    assert old_files <= set(os.listdir(out)), "version 0 still lists them"
    assert old_files.isdisjoint(s["path"] for s in load_index(out)["shards"])
    assert stray_files(out) == []
    check_with_rust_reader(mosaicrs_cli, out, 300)


def test_ignore_keeps_an_existing_dataset_and_writes_a_new_one(spark, tmp_path):
    out = tmp_path / "ds"
    frame(spark, 0, 100).write.format("mosaicrs").save(str(out))
    before = snapshot(out)

    with job_group(spark, "ignore-existing"):
        frame(spark, 100, 900).write.format("mosaicrs").mode("ignore").save(str(out))
    assert jobs_run_in_group(spark, "ignore-existing") == []
    assert snapshot(out) == before

    assert_creates(spark, "ignore", tmp_path / "fresh", 70)


def test_append_to_a_corrupt_index_is_an_io_error_naming_the_file(spark, tmp_path):
    out = tmp_path / "ds"
    frame(spark, 0, 10).write.format("mosaicrs").save(str(out))
    (out / "index.json").write_text("{not json")

    with pytest.raises(Py4JJavaError) as failure:
        frame(spark, 10, 20).write.format("mosaicrs").mode("append").save(str(out))
    message = str(failure.value)
    assert "io.mosaicrs.spark.jni.MosaicrsIOException" in message
    assert f"invalid index {out / 'index.json'}" in message


def test_sql_insert_into_and_insert_overwrite_commit_like_a_save(spark, mosaicrs_cli, tmp_path):
    out = tmp_path / "sql_table"
    frame(spark, 0, 100).write.format("mosaicrs").save(str(out))
    spark.sql("DROP TABLE IF EXISTS mosaicrs_insert_t")
    spark.sql(f"CREATE TABLE mosaicrs_insert_t (id BIGINT, x DOUBLE, label INT) "
              f"USING mosaicrs LOCATION '{out}'")
    try:
        spark.sql("INSERT INTO mosaicrs_insert_t "
                  "SELECT id, id * 1.5, CAST(id % 3 AS INT) FROM range(100, 160)")
        index = load_index(out)
        assert index["total_rows"] == 160
        assert [w["mode"] for w in index["writes"]] == ["create", "append"]
        assert_dataset_equals(frame(spark, 0, 160), out)

        spark.sql("INSERT OVERWRITE mosaicrs_insert_t "
                  "SELECT id, id * 1.5, CAST(id % 3 AS INT) FROM range(1000, 1010)")
        assert_dataset_equals(frame(spark, 1000, 1010), out)
        assert load_index(out)["writes"][-1]["mode"] == "overwrite"
        assert stray_files(out) == []
        check_with_rust_reader(mosaicrs_cli, out, 10)
    finally:
        # An external table: dropping it keeps the dataset.
        spark.sql("DROP TABLE IF EXISTS mosaicrs_insert_t")
    assert (out / "index.json").exists()
