"""How spark.read.format("mosaicrs") plans its scan: small shards packed into
input partitions by Spark's spark.sql.files.maxPartitionBytes and
openCostInBytes, as its file sources pack files, every row read once; and
count(*) answered from the index (aggregate push-down: a local scan, no
shard opened), right after an append too; and COUNT(col) and SUM(col) pushed to
the scan as partial aggregates (MIN and MAX: test_connector_min_max.py)."""

from contextlib import contextmanager

import pytest
from pyspark.sql import functions as F

from .conftest import load_index
from .readback import read_with_spark as read

ROWS = 6000
SHARDS = 12


def expected_partitions(index: dict, max_bytes: int, open_cost: int, min_partitions: int) -> int:
    """Spark's FilePartition packing (split size, then next fit) over the
    index's shards, in index order: what the connector documents."""
    sizes = [s["bytes"] for s in index["shards"] if s["rows"] > 0]
    total = sum(b + open_cost for b in sizes)
    split = min(max_bytes, max(open_cost, total // min_partitions))
    partitions, size, pieces = 0, 0, 0
    for b in sizes:
        if pieces and size + b > split:
            partitions, size, pieces = partitions + 1, 0, 0
        size += b + open_cost
        pieces += 1
    return partitions + (1 if pieces else 0)


@contextmanager
def sql_conf(spark, **settings):
    """Sets Spark SQL settings (dots as `__`) for the block, then restores them."""
    keys = {k.replace("__", "."): str(v) for k, v in settings.items()}
    before = {k: spark.conf.get(k, None) for k in keys}
    for k, v in keys.items():
        spark.conf.set(k, v)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                spark.conf.unset(k)
            else:
                spark.conf.set(k, v)


@pytest.fixture(scope="module")
def small_shards(spark, tmp_path_factory):
    df = spark.range(0, ROWS, numPartitions=SHARDS).select(
        "id", (F.col("id") * 0.5).alias("x"), F.col("id").cast("string").alias("s"))
    out = tmp_path_factory.mktemp("planning") / "small_shards"
    df.write.format("mosaicrs").option("batchRows", "100").save(str(out))
    index = load_index(out)
    assert len(index["shards"]) == SHARDS
    return out, index


def assert_every_row_once(df):
    rows = df.collect()
    assert sorted(r.id for r in rows) == list(range(ROWS))
    assert all(r.x == r.id * 0.5 and r.s == str(r.id) for r in rows)


@pytest.mark.parametrize("max_bytes, open_cost, min_partitions", [
    ("1g", 0, 1),      # the whole dataset fits one split: one task
    ("1k", 0, 1),      # every shard is larger than a split: one task each
    (None, 0, 1),      # about three shards per task (set below from their size)
    (None, None, None),  # Spark's defaults (openCostInBytes 4 MiB, the session's parallelism)
])
def test_small_shards_are_packed_by_max_partition_bytes(
        spark, small_shards, max_bytes, open_cost, min_partitions):
    out, index = small_shards
    settings = {}
    if max_bytes is None and open_cost is not None:
        max_bytes = str(3 * max(s["bytes"] for s in index["shards"]) + 1)
    if max_bytes is not None:
        settings["spark__sql__files__maxPartitionBytes"] = max_bytes
    if open_cost is not None:
        settings["spark__sql__files__openCostInBytes"] = open_cost
    if min_partitions is not None:
        settings["spark__sql__files__minPartitionNum"] = min_partitions
    with sql_conf(spark, **settings):
        df = read(spark, out)
        partitions = df.rdd.getNumPartitions()
        assert_every_row_once(df)
    units = {"g": 1 << 30, "k": 1 << 10}
    limit = (128 << 20 if max_bytes is None else
             int(max_bytes[:-1]) * units[max_bytes[-1]] if max_bytes[-1] in units else
             int(max_bytes))
    expected = expected_partitions(
        index, limit, 4 << 20 if open_cost is None else open_cost,
        min_partitions or spark.sparkContext.defaultParallelism)
    assert partitions == expected, (partitions, expected)
    assert partitions == {"1g": 1, "1k": SHARDS}.get(max_bytes, partitions)
    if max_bytes not in ("1g", "1k"):
        assert 1 < partitions < SHARDS


def test_partition_size_option_caps_the_packing(spark, small_shards):
    out, index = small_shards
    # Smaller than a shard: each shard is split at batch boundaries and no
    # piece shares a task.
    df = read(spark, out, partitionSize="4k")
    assert df.rdd.getNumPartitions() > SHARDS
    assert_every_row_once(df)


def test_count_is_answered_from_the_index(spark, tmp_path):
    out = tmp_path / "counted"
    spark.range(0, 1000, numPartitions=4).write.format("mosaicrs").save(str(out))
    df = read(spark, out)

    plan = df.groupBy().count()._jdf.queryExecution().executedPlan().toString()
    assert "LocalTableScan" in plan and "BatchScan" not in plan, plan
    assert df.count() == 1000
    df.createOrReplaceTempView("counted")
    assert spark.sql("SELECT count(*) AS n FROM counted").first().n == 1000

    # The same DataFrame plans again, so it counts what an append added.
    spark.range(1000, 1250, numPartitions=2).write.format("mosaicrs").mode("append").save(str(out))
    assert df.count() == 1250
    assert load_index(out)["total_rows"] == 1250

    # A filter stays with Spark, and so does the count over it: a scan.
    filtered = df.where(F.col("id") % 5 == 0)
    assert "BatchScan" in filtered.groupBy().count()._jdf.queryExecution().executedPlan().toString()
    assert filtered.count() == 250
    # Other aggregates are Spark's, over the scan.
    assert df.agg(F.count("id"), F.sum("id")).first() == (1250, sum(range(1250)))


def test_sums_and_counts_are_pushed_to_the_scan(spark, tmp_path):
    out = tmp_path / "summed"
    # Halves and small integers: every sum is exact in any order, so the
    # pushed partial aggregates must give Spark's answer bit for bit.
    src = spark.range(0, 1000, numPartitions=4).select(
        "id",
        F.when(F.col("id") % 5 != 0, F.col("id") % 7 - 3).cast("tinyint").alias("b"),
        (F.col("id") % 50).cast("short").alias("h"),
        F.col("id").cast("int").alias("i"),
        F.when(F.col("id") % 3 != 0, F.col("id") / 2).cast("float").alias("f"),
        F.when(F.col("id") % 4 != 0, F.col("id") % 100).cast("double").alias("d"),
        F.when(F.col("id") % 2 == 0, F.lit("x")).alias("s"),
    )
    src.write.format("mosaicrs").save(str(out))
    df = read(spark, out)
    aggs = [F.count("*"), F.count("s"), F.count("f"), F.sum("id"), F.sum("b"), F.sum("h"),
            F.sum("i"), F.sum("f"), F.sum("d"), F.avg("d")]
    pushed = df.agg(*aggs)
    plan = pushed._jdf.queryExecution().executedPlan().toString()
    assert "pushed partial aggregates" in plan, plan
    assert pushed.first() == src.agg(*aggs).first()

    # Aggregates of expressions stay with Spark, over the columnar scan.
    mixed = df.agg(F.min(F.col("id") + 1), F.sum("id"))
    assert "pushed partial" not in mixed._jdf.queryExecution().executedPlan().toString()
    assert mixed.first() == (1, sum(range(1000)))

    # A bigint sum that overflows fails, naming the column, as ANSI Spark's does.
    big = tmp_path / "big"
    spark.range(0, 2, numPartitions=1).select(F.lit(2**62).alias("v")) \
        .write.format("mosaicrs").save(str(big))
    with pytest.raises(Exception, match=r"SUM\(v\) of a mosaicrs scan overflows a bigint"):
        read(spark, big).agg(F.sum("v")).collect()

    # No rows: counts are 0 and sums null, as Spark's.
    empty = tmp_path / "empty"
    src.limit(0).write.format("mosaicrs").save(str(empty))
    assert read(spark, empty).agg(F.count("f"), F.sum("f")).first() == (0, None)
