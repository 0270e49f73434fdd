"""spark.read.format("mosaicrs"): every type the writer accepts reads back
equal to what was written (nulls included), compressed shards too; column
pruning, partitions per shard, the row count statistic; SQL tables; clear
errors for a missing dataset, a corrupt shard and a mismatched schema."""

import json

import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from .conftest import load_index
from .readback import assert_reads_back, read_with_spark as read
from .test_connector_types import ALL_TYPES, sample_row


@pytest.fixture(scope="module")
def all_types_dataset(spark, tmp_path_factory):
    rows = [sample_row(i) for i in range(1500)]
    df = spark.createDataFrame(rows, ALL_TYPES, verifySchema=False).repartition(5, "id")
    out = tmp_path_factory.mktemp("read") / "all_types"
    df.write.format("mosaicrs").option("batchRows", "97").save(str(out))
    return df, out


def test_every_type_reads_back_equal_with_nulls(spark, all_types_dataset):
    df, out = all_types_dataset
    back = read(spark, out)

    written = {f.name: f.dataType for f in df.schema.fields}
    for field in back.schema.fields:
        expected = written[field.name]
        if isinstance(expected, T.UserDefinedType):
            expected = expected.sqlType()
        assert field.dataType.simpleString() == expected.simpleString(), field.name
    assert back.columns == df.columns
    assert_reads_back(df, back)


def test_count_projection_and_filters(spark, all_types_dataset):
    df, out = all_types_dataset
    back = read(spark, out)
    assert back.count() == 1500
    assert back.where(F.col("s").isNull()).count() == df.where(F.col("s").isNull()).count()

    projected = back.select("attrs", "id")
    assert projected.schema.names == ["attrs", "id"]
    assert_reads_back(df.select("attrs", "id"), projected)

    sums = back.agg(F.sum("i64"), F.sum("f64"), F.sum("dec"), F.max("s"), F.min("day")).first()
    expected = df.agg(F.sum("i64"), F.sum("f64"), F.sum("dec"), F.max("s"), F.min("day")).first()
    # The float sum depends on the order of the additions, so on the partitions.
    assert sums[1] == pytest.approx(expected[1], rel=1e-12)
    assert tuple(sums[i] for i in (0, 2, 3, 4)) == tuple(expected[i] for i in (0, 2, 3, 4))
    nested = back.select(F.col("point.inner.k").alias("k"), F.size("nested").alias("n"), "id")
    assert_reads_back(
        df.select(F.col("point.inner.k").alias("k"), F.size("nested").alias("n"), "id"), nested)


def test_partitions_follow_shards_and_split_large_ones(spark, tmp_path):
    df = spark.range(0, 40000, numPartitions=2).select(
        "id", (F.col("id") * 0.25).alias("x"), F.col("id").cast("string").alias("s"))
    out = tmp_path / "sharded"
    df.write.format("mosaicrs").option("shardSize", "64k").option("batchRows", "500") \
        .save(str(out))
    index = load_index(out)
    shards = len(index["shards"])
    assert shards > 2

    # One task per shard when no two shards fit one split (see
    # test_connector_scan_planning for the packing of small shards).
    spark.conf.set("spark.sql.files.maxPartitionBytes", "1k")
    try:
        back = read(spark, out)
        assert back.rdd.getNumPartitions() == shards
        assert_reads_back(df, back)
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")

    # Smaller partitions than shards: each shard is split at batch boundaries.
    split = read(spark, out, partitionSize="16k")
    assert split.rdd.getNumPartitions() > shards
    assert_reads_back(df, split)
    assert split.count() == 40000

    plan_stats = back._jdf.queryExecution().optimizedPlan().stats()
    assert int(str(plan_stats.rowCount().get())) == 40000
    assert int(str(plan_stats.sizeInBytes())) == index["total_bytes"]


@pytest.mark.parametrize("codec", ["zstd", "lz4"])
def test_compressed_shards_read_back(spark, tmp_path, codec):
    rows = [sample_row(i) for i in range(400)]
    df = spark.createDataFrame(rows, ALL_TYPES, verifySchema=False).repartition(3, "id")
    out = tmp_path / codec
    df.write.format("mosaicrs").option("compression", codec).option("batchRows", "64") \
        .save(str(out))
    assert {s["compression"] for s in load_index(out)["shards"]} == {codec}
    assert_reads_back(df, read(spark, out))
    assert_reads_back(df.select("s", "id"), read(spark, out).select("s", "id"))


def test_empty_dataset_reads_as_no_rows(spark, tmp_path):
    df = spark.range(0, 10).select("id", F.col("id").cast("string").alias("name")).where("id < 0")
    out = tmp_path / "empty"
    df.write.format("mosaicrs").save(str(out))
    back = read(spark, out)
    assert back.schema.names == ["id", "name"]
    assert back.collect() == [] and back.count() == 0


def test_sql_create_table_and_select(spark, all_types_dataset):
    df, out = all_types_dataset
    spark.sql("DROP TABLE IF EXISTS mosaicrs_all_types")
    spark.sql(f"CREATE TABLE mosaicrs_all_types USING mosaicrs LOCATION '{out}'")
    try:
        described = {r.col_name: r.data_type for r in spark.sql("DESCRIBE mosaicrs_all_types").collect()}
        assert described["ts_ntz"] == "timestamp_ntz" and described["attrs"] == "map<string,bigint>"
        got = spark.sql(
            "SELECT count(*) AS n, sum(i32) AS s, count(s) AS strings FROM mosaicrs_all_types "
            "WHERE id % 2 = 0").first()
        expected = df.where("id % 2 = 0").agg(
            F.count("*").alias("n"), F.sum("i32").alias("s"), F.count("s").alias("strings")).first()
        assert got == expected
        assert_reads_back(df.select("id", "s", "point"),
                          spark.sql("SELECT id, s, point FROM mosaicrs_all_types"))
    finally:
        spark.sql("DROP TABLE IF EXISTS mosaicrs_all_types")
    # An external table: dropping it leaves the dataset in place.
    assert read(spark, out).count() == 1500


def test_missing_dataset_names_the_path(spark, tmp_path):
    missing = tmp_path / "nothing-here"
    with pytest.raises(Exception) as failure:
        read(spark, missing).collect()
    message = str(failure.value)
    assert str(missing) in message and "index.json" in message, message


def test_sql_table_schema_that_disagrees_with_the_dataset_names_the_column(
        spark, all_types_dataset):
    _, out = all_types_dataset
    # A SQL table whose declared columns the dataset does not hold as declared.
    for columns, named in [("id bigint, s int", "`s`"), ("id bigint, absent int", "`absent`")]:
        spark.sql("DROP TABLE IF EXISTS mosaicrs_wrong_schema")
        spark.sql(f"CREATE TABLE mosaicrs_wrong_schema ({columns}) USING mosaicrs "
                  f"LOCATION '{out}'")
        try:
            with pytest.raises(Exception) as failure:
                spark.sql("SELECT * FROM mosaicrs_wrong_schema").collect()
            assert named in str(failure.value) and str(out) in str(failure.value), \
                str(failure.value)
        finally:
            spark.sql("DROP TABLE IF EXISTS mosaicrs_wrong_schema")


def test_user_schema_and_write_options_are_refused_on_read(spark, all_types_dataset):
    _, out = all_types_dataset
    # The schema comes from the dataset: Spark refuses a user schema.
    with pytest.raises(Exception, match="user specified schema"):
        spark.read.format("mosaicrs").schema("id bigint, s int").load(str(out)).collect()
    with pytest.raises(Exception) as failure:
        read(spark, out, shardSize="1m").collect()
    assert "shardSize" in str(failure.value), str(failure.value)


def test_corrupt_shard_fails_naming_the_shard(spark, tmp_path):
    df = spark.range(0, 5000, numPartitions=2).select("id", F.col("id").cast("string").alias("s"))
    out = tmp_path / "corrupt"
    df.write.format("mosaicrs").option("batchRows", "1000").save(str(out))
    shard = load_index(out)["shards"][0]["path"]
    path = out / shard
    data = bytearray(path.read_bytes())

    # Same size, garbage where the record batches start: the file no longer parses.
    data[8:4000] = b"\xff" * (4000 - 8)
    path.write_bytes(bytes(data))
    with pytest.raises(Exception) as failure:
        read(spark, out).collect()
    assert shard in str(failure.value), str(failure.value)

    # Truncated: caught when the shard is opened (a bare count() opens none:
    # it comes from the index).
    path.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(Exception) as failure:
        read(spark, out).select("id").collect()
    assert shard in str(failure.value), str(failure.value)

    # The JVM and the session survive.
    assert spark.range(3).count() == 3


def test_index_json_is_what_statistics_report(spark, all_types_dataset):
    _, out = all_types_dataset
    index = json.loads((out / "index.json").read_text())
    stats = read(spark, out)._jdf.queryExecution().optimizedPlan().stats()
    assert int(str(stats.rowCount().get())) == index["total_rows"] == 1500
