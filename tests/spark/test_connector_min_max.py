"""MIN and MAX pushed to the mosaicrs scan as partial aggregates: each task
folds its rows into one row of minima and maxima, and Spark's final aggregate
combines them. The answers must be Spark's own, bit for bit, on the same rows
read from Parquet (where Spark aggregates): nulls skipped, null when no value,
NaN above every other float, -0.0 equal to 0.0 (the first in row order kept),
for every type the scan folds. Decimals, strings and grouped aggregates stay
with Spark."""

import math

import pytest
from pyspark.sql import functions as F

from .readback import read_with_spark as read

ROWS = 3000
# The types the scan folds, one column each.
FOLDED = ["b", "h", "i", "l", "f", "d", "nan_only", "no_value", "flag", "day", "ts", "ntz"]
NAN = float("nan")


def same(a, b) -> bool:
    """Equal as Spark's values: NaN equals NaN, and -0.0 differs from 0.0."""
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    return type(a) is type(b) and a == b


def assert_same_rows(got, expected):
    assert len(got) == len(expected)
    for name, a, b in zip(expected.__fields__, got, expected):
        assert same(a, b), (name, a, b)


def plan(df) -> str:
    return df._jdf.queryExecution().executedPlan().toString()


def source(spark, rows):
    id_ = F.col("id")
    return spark.range(0, rows, numPartitions=3).select(
        "id",
        F.when(id_ % 7 != 0, (id_ * 37) % 251 - 125).cast("tinyint").alias("b"),
        ((id_ * 13) % 60001 - 30000).cast("smallint").alias("h"),
        ((id_ * 7919) % 100003 - 50000).cast("int").alias("i"),
        F.when(id_ == 1234, F.lit(2**62)).when(id_ == 2345, F.lit(-2**62))
        .otherwise(id_ * -3 + 17).alias("l"),
        # One NaN among finite values and nulls: the maximum is NaN, the
        # minimum the least finite value.
        F.when(id_ % 11 == 0, None).when(id_ == 777, F.lit(NAN))
        .otherwise((id_ % 97) / 4 - 10).cast("float").alias("f"),
        F.when(id_ == 5, F.lit(float("-inf"))).when(id_ % 13 == 0, None)
        .otherwise((id_ % 89) * 0.5 - 20).cast("double").alias("d"),
        F.when(id_ % 2 == 0, F.lit(NAN)).cast("double").alias("nan_only"),
        F.lit(None).cast("int").alias("no_value"),
        F.when(id_ % 5 != 0, id_ % 3 == 1).alias("flag"),
        F.expr("date_add(DATE'2020-01-01', CAST((id * 7) % 1000 - 500 AS INT))").alias("day"),
        F.when(id_ % 17 != 0, F.timestamp_seconds((id_ * 7777) % 1000003 - 500000)).alias("ts"),
        F.timestamp_seconds((id_ * 3331) % 99991).cast("timestamp_ntz").alias("ntz"),
        (id_ / 8).cast("decimal(12,3)").alias("dec"),
        F.when(id_ % 4 != 0, F.format_string("s%05d", (id_ * 31) % 10007)).alias("s"),
    )


@pytest.fixture(scope="module")
def copies(spark, tmp_path_factory):
    """The same rows as a mosaicrs dataset (3 shards of 128-row batches) and as Parquet."""
    folder = tmp_path_factory.mktemp("min_max")
    src = source(spark, ROWS)
    src.write.format("mosaicrs").option("batchRows", "128").save(str(folder / "data"))
    src.write.parquet(str(folder / "parquet"))
    return folder / "data", folder / "parquet"


def test_min_max_of_every_folded_type_are_spark_s(spark, copies):
    data, parquet = copies
    aggs = [F.min(c) for c in FOLDED] + [F.max(c) for c in FOLDED]
    # Several tasks, each over a few batches, so that batches and tasks are combined.
    pushed = read(spark, data, partitionSize="16k").agg(*aggs)
    assert read(spark, data, partitionSize="16k").rdd.getNumPartitions() > 3
    text = plan(pushed)
    assert "pushed partial aggregates" in text and "MAX(ntz)" in text, text
    got = pushed.first()
    assert_same_rows(got, spark.read.parquet(str(parquet)).agg(*aggs).first())

    # The values themselves, as Spark defines them.
    assert math.isnan(got["max(f)"]) and got["min(f)"] == -10.0
    assert got["min(d)"] == float("-inf") and got["max(d)"] == 24.0
    assert math.isnan(got["min(nan_only)"]) and math.isnan(got["max(nan_only)"])
    assert got["min(no_value)"] is None and got["max(no_value)"] is None
    assert (got["min(l)"], got["max(l)"]) == (-2**62, 2**62)
    assert (got["min(flag)"], got["max(flag)"]) == (False, True)


def test_min_max_with_sums_and_counts_are_pushed_together(spark, copies):
    data, parquet = copies
    aggs = [F.count("*"), F.count("f"), F.sum("i"), F.avg("h"), F.min("i"), F.max("day")]
    pushed = read(spark, data).agg(*aggs)
    assert "pushed partial aggregates" in plan(pushed)
    assert_same_rows(pushed.first(), spark.read.parquet(str(parquet)).agg(*aggs).first())


def test_decimal_string_and_grouped_min_max_stay_with_spark(spark, copies):
    data, parquet = copies
    for query in (
        # One aggregate the scan cannot fold keeps them all with Spark.
        lambda df: df.agg(F.min("dec"), F.max("s"), F.max(F.col("i") + 1), F.min("b")),
        lambda df: df.groupBy("flag").agg(F.min("i"), F.max("d")).orderBy("flag"),
    ):
        ours = query(read(spark, data))
        assert "pushed partial" not in plan(ours)
        expected = query(spark.read.parquet(str(parquet))).collect()
        got = ours.collect()
        assert len(got) == len(expected)
        for a, b in zip(got, expected):
            assert_same_rows(a, b)


def test_signed_zeros_keep_the_first_in_row_order(spark, tmp_path):
    # One shard, one task: row order is the fold's order, as in Spark's own
    # partial aggregate, which keeps the first of two equal values.
    rows = [(-0.0, 0.0, 1.0), (0.0, -0.0, -0.0), (-0.0, 0.0, 0.0)]
    src = spark.createDataFrame(rows, "neg_first double, pos_first float, mixed double") \
        .coalesce(1)
    src.write.format("mosaicrs").save(str(tmp_path / "zeros"))
    aggs = [F.min(c) for c in src.columns] + [F.max(c) for c in src.columns]
    pushed = read(spark, tmp_path / "zeros").agg(*aggs)
    assert "pushed partial aggregates" in plan(pushed)
    got = pushed.first()
    assert_same_rows(got, src.agg(*aggs).first())
    assert [math.copysign(1.0, v) for v in got] == [-1.0, 1.0, -1.0, -1.0, 1.0, 1.0]
    assert got["max(mixed)"] == 1.0


def test_min_max_of_no_rows_are_null(spark, tmp_path):
    empty = tmp_path / "empty"
    source(spark, 10).limit(0).write.format("mosaicrs").save(str(empty))
    aggs = [F.min(c) for c in FOLDED] + [F.max(c) for c in FOLDED] + [F.count("*")]
    pushed = read(spark, empty).agg(*aggs)
    assert "pushed partial aggregates" in plan(pushed)
    assert tuple(pushed.first()) == (None,) * (2 * len(FOLDED)) + (0,)
