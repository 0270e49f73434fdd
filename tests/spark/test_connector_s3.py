"""The connector on a real S3-compatible server (moto, started by the tests):
`df.write.format("mosaicrs").save("s3://...")` streams each task's shards to
the store and commits the index with a conditional write;
`spark.read.format("mosaicrs").load("s3://...")` reads them back. Storage
options come from `storage.<key>` options or the session's
`spark.mosaicrs.storage.<key>` settings, and their values never show."""

import json
import threading

import pytest
from pyspark.sql import functions as F
from pyspark.sql.utils import AnalysisException

from .readback import normalised_rows
from .test_connector_failures import failing_udf

def storage(moto):
    return {f"storage.{k}": v for k, v in moto.storage_options().items()}


def frame(spark, rows=3000, partitions=3, start=0):
    return spark.range(start, start + rows, numPartitions=partitions).select(
        "id",
        (F.col("id") * 0.5).alias("x"),
        F.concat(F.lit("row-"), F.col("id").cast("string")).alias("name"),
        F.when(F.col("id") % 7 == 0, None).otherwise(F.col("id") % 10).alias("label"),
        F.array(F.col("id").cast("float"), F.lit(1.5).cast("float")).alias("features"),
    )


def read(spark, url, moto):
    return spark.read.format("mosaicrs").options(**storage(moto)).load(url)


@pytest.fixture(scope="module")
def bucket(moto_server):
    return moto_server.create_bucket("spark-s3-tests")


def test_write_and_read_back_through_s3(spark, moto_server, bucket, tmp_path):
    url = f"{bucket}/roundtrip"
    source = frame(spark)
    source.write.format("mosaicrs").options(**storage(moto_server)) \
        .option("shardSize", "16k").mode("overwrite").save(url)

    keys = moto_server.list_keys("spark-s3-tests", "roundtrip/")
    shards = [k for k in keys if k.endswith(".arrow")]
    assert "roundtrip/index.json" in keys and len(shards) >= 3, keys
    index = moto_server.get("spark-s3-tests", "roundtrip/index.json").decode()
    listed = sorted(f"roundtrip/{s['path']}" for s in json.loads(index)["shards"])
    assert listed == sorted(shards), "every uploaded shard is listed, nothing else"
    assert json.loads(index)["total_rows"] == 3000
    # Nothing of the dataset went to a local folder named like the URL.
    assert not (tmp_path / "roundtrip").exists()

    back = read(spark, url, moto_server)
    assert back.count() == 3000
    assert normalised_rows(back.collect(), source.schema, "id") == \
        normalised_rows(source.collect(), source.schema, "id")
    assert back.select(F.sum("x")).first()[0] == pytest.approx(sum(i * 0.5 for i in range(3000)))


def test_append_and_overwrite_on_s3(spark, moto_server, bucket):
    url = f"{bucket}/modes"
    opts = storage(moto_server)
    frame(spark, 1000).write.format("mosaicrs").options(**opts).save(url)  # errorifexists
    frame(spark, 500).write.format("mosaicrs").options(**opts).mode("append").save(url)
    assert read(spark, url, moto_server).count() == 1500
    with pytest.raises(AnalysisException):
        frame(spark, 10).write.format("mosaicrs").options(**opts).save(url)
    frame(spark, 10).write.format("mosaicrs").options(**opts).mode("ignore").save(url)
    assert read(spark, url, moto_server).count() == 1500
    frame(spark, 200).write.format("mosaicrs").options(**opts).mode("overwrite").save(url)
    back = read(spark, url, moto_server)
    assert back.count() == 200
    assert sorted(r.id for r in back.select("id").collect()) == list(range(200))
    keys = moto_server.list_keys("spark-s3-tests", "modes/")
    records = [k for k in keys if k.startswith("modes/_versions/") and k.endswith(".json")]
    listed = {s["path"] for r in records
              for s in json.loads(moto_server.get("spark-s3-tests", r))["shards"]}
    index = json.loads(moto_server.get("spark-s3-tests", "modes/index.json"))
    assert {s["path"] for s in index["shards"]} <= listed
    shards = [k for k in keys if k.endswith(".arrow")]
    assert sorted(f"modes/{p}" for p in listed) == sorted(shards), \
        "the overwrite kept the replaced shards for the older versions, and nothing else"


def test_session_storage_settings_apply_without_options(spark, moto_server, bucket):
    url = f"{bucket}/session"
    keys = [f"spark.mosaicrs.storage.{k}" for k in moto_server.storage_options()]
    for key, value in zip(keys, moto_server.storage_options().values()):
        spark.conf.set(key, value)
    try:
        frame(spark, 300).write.format("mosaicrs").mode("overwrite").save(url)
        assert spark.read.format("mosaicrs").load(url).count() == 300
    finally:
        for key in keys:
            spark.conf.unset(key)


def test_concurrent_appends_both_land(spark, moto_server, bucket):
    url = f"{bucket}/race"
    opts = storage(moto_server)
    frame(spark, 100).write.format("mosaicrs").options(**opts).mode("overwrite").save(url)
    errors = []

    def append(offset):
        try:
            frame(spark, 2000, partitions=2, start=offset).write.format("mosaicrs") \
                .options(**opts).mode("append").save(url)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=append, args=(o,)) for o in (10_000, 20_000)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    ids = sorted(r.id for r in read(spark, url, moto_server).select("id").collect())
    assert ids == list(range(100)) + list(range(10_000, 12_000)) + list(range(20_000, 22_000))


def test_retried_task_leaves_no_objects_behind(spark, moto_server, bucket, tmp_path):
    url = f"{bucket}/retried"
    markers = tmp_path / "markers"
    markers.mkdir()
    udf = failing_udf(markers, {1}, lambda p: p * 1000 + 900)
    spark.range(0, 3000, numPartitions=3).select(udf(F.col("id")).alias("id")) \
        .write.format("mosaicrs").options(**storage(moto_server)) \
        .option("batchRows", "100").option("shardSize", "2k").mode("overwrite").save(url)
    assert (markers / "failed-p1-a0").exists()
    ids = sorted(r.id for r in read(spark, url, moto_server).collect())
    assert ids == list(range(3000))
    index = json.loads(moto_server.get("spark-s3-tests", "retried/index.json"))
    objects = [k for k in moto_server.list_keys("spark-s3-tests", "retried/")
               if k != "retried/index.json" and not k.startswith("retried/_versions/")]
    assert sorted(f"retried/{s['path']}" for s in index["shards"]) == sorted(objects), \
        "the failed attempt's uploads were deleted"


def test_errors_name_the_url_and_never_the_secret(spark, moto_server, bucket):
    secret = moto_server.SECRET_KEY
    with pytest.raises(Exception) as missing:
        read(spark, f"{bucket}/no-such-dataset", moto_server).count()
    text = str(missing.value)
    assert "s3://spark-s3-tests/no-such-dataset" in text and secret not in text
    with pytest.raises(Exception) as bad_option:
        spark.range(3).write.format("mosaicrs").options(**storage(moto_server)) \
            .option("storage.aws_no_such_option", "1").mode("overwrite").save(f"{bucket}/bad")
    text = str(bad_option.value)
    assert "aws_no_such_option" in text and secret not in text
    url = f"{bucket}/secret-free-plan"
    spark.range(3).write.format("mosaicrs").options(**storage(moto_server)) \
        .mode("overwrite").save(url)
    df = read(spark, url, moto_server)
    assert df.count() == 3
    plan = df._jdf.queryExecution().toString()
    assert url in plan and secret not in plan


def test_credentials_in_the_url_are_refused(spark, moto_server):
    with pytest.raises(Exception) as refused:
        spark.range(3).write.format("mosaicrs").mode("overwrite") \
            .save("s3://key:topsecret@bucket/data")
    assert "must not carry credentials" in str(refused.value)
    assert "topsecret" not in str(refused.value)
