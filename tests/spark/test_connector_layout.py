"""Column layout options through Spark: `pack.<name>` stores numeric columns
row-major as one fixed-size-list column, `fixedLength.<column>` stores an
`array<float>` of one declared length as a fixed-size list. Read back by
Spark's own read path, pyarrow and the Rust reader; bad layouts fail on the
driver, a row of the wrong length fails its task naming the column."""

import glob
import json
import os

import pyarrow as pa
import pyarrow.ipc
import pytest
from pyspark.sql import functions as F

from .conftest import SPARK_4, job_group, jobs_run_in_group, load_index

X = [f"x{k}" for k in range(8)]
ROWS = 4000


@pytest.fixture(scope="module")
def features(spark):
    return spark.range(0, ROWS, numPartitions=2).select(
        "id",
        *[((F.col("id") * (k + 1)) / 7).cast("float").alias(name) for k, name in enumerate(X)],
        F.array(*[(F.col("id") + k).cast("float") for k in range(4)]).alias("emb"),
        (F.col("id") % 10).alias("label"),
    )


def expected_rows(features):
    return {r["id"]: r for r in features.collect()}


def layout_options():
    return {"pack.features": ",".join(X), "fixedLength.emb": "4"}


def is_fixed_list_of_floats(data_type, size):
    # The child's name and nullability follow the writer (the JVM connector
    # makes every field nullable; the Python data source keeps Spark's).
    return (pa.types.is_fixed_size_list(data_type) and data_type.list_size == size
            and data_type.value_type == pa.float32())


def check_layout(out, features):
    index = load_index(out)
    assert index["total_rows"] == ROWS
    # Any Arrow reader opens the shards: the packed column is a fixed-size
    # list that names its columns in the field metadata.
    shards = sorted(glob.glob(os.path.join(out, "*.arrow")))
    table = pa.concat_tables(pa.ipc.open_file(s).read_all() for s in shards).sort_by("id")
    assert table.schema.names == ["id", "features", "emb", "label"]
    field = table.schema.field("features")
    assert is_fixed_list_of_floats(field.type, len(X))
    assert json.loads(field.metadata[b"mosaicrs.packed_columns"]) == X
    assert is_fixed_list_of_floats(table.schema.field("emb").type, 4)
    want = expected_rows(features)
    for row in table.to_pylist():
        source = want[row["id"]]
        assert row["features"] == [source[name] for name in X]
        assert row["emb"] == source["emb"]
        assert row["label"] == source["label"]


def test_jvm_connector_packs_and_spark_reads_the_arrays_back(spark, features, tmp_path):
    out = tmp_path / "packed"
    features.write.format("mosaicrs").options(**layout_options()).save(str(out))
    check_layout(out, features)

    back = spark.read.format("mosaicrs").load(str(out))
    assert [f.name for f in back.schema.fields] == ["id", "features", "emb", "label"]
    want = expected_rows(features)
    rows = back.collect()
    assert len(rows) == ROWS
    for row in rows:
        source = want[row["id"]]
        assert list(row["features"]) == [source[name] for name in X]
        assert list(row["emb"]) == list(source["emb"])

    # An append with the same options joins the dataset; one without them
    # does not (its schema differs), and says so before any task runs.
    features.write.format("mosaicrs").options(**layout_options()).mode("append").save(str(out))
    assert load_index(out)["total_rows"] == 2 * ROWS
    with pytest.raises(Exception, match="schema") as refused:
        features.write.format("mosaicrs").mode("append").save(str(out))
    # The error names the options the dataset was written with.
    assert "pack.features=" + ",".join(X) in str(refused.value)


@pytest.mark.parametrize("options, expected", [
    ({"pack.features": "x0,nope"}, 'names column "nope"'),
    ({"pack.features": "x0,emb"}, "only integer and floating-point"),
    ({"pack.id": "x0,x1"}, "already has a column"),
    ({"fixedLength.x0": "4"}, "neither a list"),
    ({"fixedLength.emb": "zero"}, "positive length"),
])
def test_bad_layouts_fail_on_the_driver(spark, features, tmp_path, options, expected):
    out = tmp_path / "never"
    with job_group(spark, "bad-layout"), pytest.raises(Exception) as failure:
        features.write.format("mosaicrs").options(**options).save(str(out))
    assert expected in str(failure.value)
    assert jobs_run_in_group(spark, "bad-layout") == []
    assert not out.exists()


def test_a_row_of_another_length_fails_the_write_naming_the_column(spark, features, tmp_path):
    out = tmp_path / "ragged"
    ragged = features.withColumn(
        "emb", F.when(F.col("id") == 1234, F.array(F.lit(1.0).cast("float"))).otherwise(F.col("emb")))
    with pytest.raises(Exception) as failure:
        ragged.write.format("mosaicrs").option("fixedLength.emb", "4").save(str(out))
    assert 'column "emb" holds 1 values' in str(failure.value)
    assert "fixedLength.emb=4" in str(failure.value)
    assert not (out / "index.json").exists()
    # The job's abort removed every shard of the failed write.
    assert sorted(p.name for p in out.glob("*")) == [] if out.exists() else True


@pytest.mark.skipif(not SPARK_4, reason="Python data sources need Spark 4")
def test_the_jar_free_writer_takes_the_same_layout_options(spark, features, tmp_path):
    mosaicrs_spark = pytest.importorskip("mosaicrs.spark")
    mosaicrs_spark.register(spark)
    out = tmp_path / "packed_py"
    # Spark lets a Python data source append or overwrite only; this appends
    # into a new dataset.
    features.write.format(mosaicrs_spark.FORMAT).options(**layout_options()).mode("append") \
        .save(str(out))
    check_layout(out, features)


def test_ml_vectors_with_a_declared_size_become_fixed_size_lists(spark, tmp_path):
    from pyspark.ml.linalg import Vectors

    def vector(i):
        if i % 3:
            return Vectors.dense([float(i), i + 0.5, -float(i)])
        return Vectors.sparse(3, {1: float(i)})

    df = spark.createDataFrame([(i, vector(i)) for i in range(300)], ["id", "vec"])
    out = tmp_path / "vectors"
    df.write.format("mosaicrs").option("fixedLength.vec", "3").save(str(out))
    shards = sorted(glob.glob(os.path.join(out, "*.arrow")))
    table = pa.concat_tables(pa.ipc.open_file(s).read_all() for s in shards).sort_by("id")
    data_type = table.schema.field("vec").type
    assert pa.types.is_fixed_size_list(data_type) and data_type.list_size == 3
    assert data_type.value_type == pa.float64()
    for row in table.to_pylist():
        assert row["vec"] == vector(row["id"]).toArray().tolist()
    assert len(table) == 300

    # A vector of another size fails the write, naming the column.
    with pytest.raises(Exception) as failure:
        df.write.format("mosaicrs").option("fixedLength.vec", "4").save(str(tmp_path / "bad"))
    assert 'column "vec" (a Spark ML vector)' in str(failure.value)
    assert not (tmp_path / "bad" / "index.json").exists()
