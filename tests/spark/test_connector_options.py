"""Options: shardSize, compression and batchRows take effect; an unknown
option or a bad value fails on the driver with a message naming it."""

import pytest
from pyspark.sql import functions as F

from .conftest import job_group, jobs_run_in_group, load_index, stray_files
from .readback import assert_dataset_equals, check_with_rust_reader


@pytest.fixture(scope="module")
def df(spark):
    return spark.range(0, 20000, numPartitions=2).select(
        "id", *[(F.col("id") * k).cast("double").alias(f"c{k}") for k in range(4)])


def test_shard_size_and_batch_rows_shape_the_shards(df, mosaicrs_cli, tmp_path):
    out = tmp_path / "small_shards"
    df.write.format("mosaicrs").option("shardSize", "64k").option("BATCHROWS", "500") \
        .save(str(out))

    shards = load_index(out)["shards"]
    assert len(shards) > 4
    for shard in shards:
        # A shard is sealed at the first batch that takes it past 64 KiB.
        assert shard["bytes"] < 64 * 1024 + 500 * 40 + 4096, shard
        assert shard["batches"] == -(-shard["rows"] // 500), shard
    assert_dataset_equals(df, out)
    check_with_rust_reader(mosaicrs_cli, out, 20000)


@pytest.mark.parametrize("codec", ["zstd", "lz4", "none"])
def test_compression(df, mosaicrs_cli, tmp_path, codec):
    out = tmp_path / codec
    df.write.format("mosaicrs").option("compression", codec.upper()).save(str(out))
    assert {s["compression"] for s in load_index(out)["shards"]} == {codec}
    assert_dataset_equals(df, out)
    check_with_rust_reader(mosaicrs_cli, out, 20000)


def test_file_uri_paths_are_accepted(spark, tmp_path):
    out = tmp_path / "via_uri"
    small = spark.range(10)
    small.write.format("mosaicrs").save(out.as_uri())
    assert_dataset_equals(small, out)
    assert stray_files(out) == []


@pytest.mark.parametrize("options, expected", [
    ({"shardsize2": "1m"}, "unknown mosaicrs option 'shardsize2'"),
    ({"shardSize": "lots"}, "invalid value 'lots' for mosaicrs option 'shardSize'"),
    ({"shardSize": "0"}, "invalid value '0' for mosaicrs option 'shardSize'"),
    ({"compression": "gzip"}, "invalid value 'gzip' for mosaicrs option 'compression'"),
    ({"batchRows": "0"}, "invalid value '0' for mosaicrs option 'batchRows'"),
    ({"batchRows": "many"}, "invalid value 'many' for mosaicrs option 'batchRows'"),
])
def test_bad_options_fail_on_the_driver_naming_them(spark, tmp_path, options, expected):
    out = tmp_path / "never"
    with job_group(spark, "bad-option"), pytest.raises(Exception) as failure:
        spark.range(10).write.format("mosaicrs").options(**options).save(str(out))
    assert expected in str(failure.value)
    assert jobs_run_in_group(spark, "bad-option") == []
    assert not out.exists()


def test_partition_by_and_remote_paths_are_refused(spark, tmp_path):
    df = spark.range(10).withColumn("p", F.col("id") % 2)
    with pytest.raises(Exception, match="does not support partitionBy"):
        df.write.format("mosaicrs").partitionBy("p").save(str(tmp_path / "parts"))
    with pytest.raises(Exception, match="scheme 'hdfs'"):
        df.write.format("mosaicrs").save("hdfs://namenode/data")
    with pytest.raises(Exception, match="needs a path"):
        df.write.format("mosaicrs").save()
    a_file = tmp_path / "file.txt"
    a_file.write_text("not a folder")
    with pytest.raises(Exception, match="is a file; a dataset is a folder"):
        df.write.format("mosaicrs").save(str(a_file))
