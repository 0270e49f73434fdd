"""The connector's smoke test, run on every Spark release that the connector
supports (`make test-spark` runs it in each per-release venv; the full suite
runs it too): every type written with a retried task and read back with
`spark.read.format("mosaicrs")`, every value compared with what was written,
nulls included; and each save mode, read back the same way."""

import os

import pytest
from pyspark.sql import functions as F

from .conftest import load_index, wait_for_no_strays
from .readback import assert_reads_back, read_table, read_with_spark
from .test_connector_failures import failing_udf
from .test_connector_types import ALL_TYPES, assert_arrow_types, sample_row


def test_every_type_with_a_retried_task_reads_back(spark, tmp_path):
    base = spark.createDataFrame([sample_row(i) for i in range(800)], ALL_TYPES,
                                 verifySchema=False).repartition(4, "id")
    # Partition 2's first attempt fails half-way, after some shards were sealed.
    ids = base.select("id").rdd.mapPartitionsWithIndex(
        lambda p, rows: [r.id for r in rows] if p == 2 else []).collect()
    assert len(ids) > 20
    markers = tmp_path / "markers"
    markers.mkdir()
    udf = failing_udf(markers, {2}, lambda p: ids[len(ids) // 2])
    df = base.select(udf(F.col("id")).alias("id"), *base.columns[1:])
    out = tmp_path / "all_types"
    df.write.format("mosaicrs").option("batchRows", "37").option("shardSize", "16k") \
        .save(str(out))

    assert sorted(os.listdir(markers)) == ["failed-p2-a0"]
    assert_reads_back(base, read_with_spark(spark, out))
    # The shards hold the connector's Arrow layout.
    assert_arrow_types(read_table(out).schema)
    shards = load_index(out)["shards"]
    assert len({s["task_attempt"] for s in shards if s["partition"] == 2}) == 1
    assert wait_for_no_strays(out) == []


def test_each_save_mode(spark, tmp_path):
    def frame(start, stop):
        return spark.range(start, stop, numPartitions=2).select(
            "id", (F.col("id") * 0.5).alias("x"))

    def assert_holds(start, stop):
        assert_reads_back(frame(start, stop), read_with_spark(spark, out))

    out = tmp_path / "modes"
    frame(0, 30).write.format("mosaicrs").save(str(out))          # errorifexists: creates
    assert_holds(0, 30)
    index = (out / "index.json").read_bytes()

    with pytest.raises(Exception, match="already exists"):
        frame(30, 40).write.format("mosaicrs").save(str(out))
    frame(30, 40).write.format("mosaicrs").mode("ignore").save(str(out))
    assert (out / "index.json").read_bytes() == index
    assert_holds(0, 30)

    frame(30, 50).write.format("mosaicrs").mode("append").save(str(out))
    assert_holds(0, 50)

    frame(100, 110).write.format("mosaicrs").mode("overwrite").save(str(out))
    assert_holds(100, 110)
    assert load_index(out)["total_rows"] == 10
