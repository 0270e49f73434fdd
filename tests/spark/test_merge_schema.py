"""`mode("append").option("mergeSchema", "true")`: an append that adds a
column, read back by Spark with nulls for the older rows; without the option
the append fails before any task, naming the column."""

import pytest
from pyspark.errors import IllegalArgumentException
from pyspark.sql import functions as F

from .conftest import job_group, jobs_run_in_group, load_index


def test_merge_schema_adds_a_column_that_older_rows_read_as_null(spark, tmp_path):
    out = str(tmp_path / "ds")
    old = spark.range(0, 60, numPartitions=2).select("id", (F.col("id") * 0.5).alias("x"))
    old.write.format("mosaicrs").save(out)
    new = spark.range(60, 90, numPartitions=2).select(
        "id", (F.col("id") * 0.5).alias("x"), F.concat(F.lit("t"), F.col("id")).alias("tag"))

    with job_group(spark, "merge-refused"), \
            pytest.raises(IllegalArgumentException, match="mergeSchema") as failure:
        new.write.format("mosaicrs").mode("append").save(out)
    assert '"tag"' in str(failure.value)
    assert jobs_run_in_group(spark, "merge-refused") == []
    assert len(load_index(tmp_path / "ds")["writes"]) == 1

    new.write.format("mosaicrs").mode("append").option("mergeSchema", "true").save(out)

    back = spark.read.format("mosaicrs").load(out)
    assert back.columns == ["id", "x", "tag"]
    rows = {r["id"]: (r["x"], r["tag"]) for r in back.collect()}
    assert sorted(rows) == list(range(90))
    assert all(rows[i] == (i * 0.5, None) for i in range(60))
    assert all(rows[i] == (i * 0.5, f"t{i}") for i in range(60, 90))


def test_mosaicrs_py_passes_merge_schema_to_its_commit(spark, tmp_path):
    mosaicrs = pytest.importorskip("mosaicrs", reason="run `make python` to install the wheel")
    from mosaicrs.spark import FORMAT, register

    if not hasattr(spark, "dataSource"):
        pytest.skip("the mosaicrs_py data source needs Spark 4")
    register(spark)
    out = str(tmp_path / "py")
    spark.range(0, 4, numPartitions=1).write.format(FORMAT).mode("overwrite").save(out)
    # A nullable column: Spark's own nullability reaches this writer.
    n = F.when(F.col("id") > 0, F.col("id").cast("int")).alias("n")
    added = spark.range(4, 6, numPartitions=1).select("id", n)
    with pytest.raises(Exception, match="mergeSchema"):
        added.write.format(FORMAT).mode("append").save(out)
    added.write.format(FORMAT).mode("append").option("mergeSchema", "true").save(out)
    table = mosaicrs.Dataset(out).take(list(range(6)))
    assert table.column("n").to_pylist() == [None] * 4 + [4, 5]
