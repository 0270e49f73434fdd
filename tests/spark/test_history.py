"""Versions through Spark: versionAsOf / timestampAsOf reads, and what a
commit records (metadata.<key> options, the application), as `mosaicrs log`
shows it."""

import datetime
import json

import pytest

from conftest import run_cli


def ids(df):
    return sorted(r.id for r in df.select("id").collect())


def test_time_travel_reads_and_commit_metadata(spark, mosaicrs_cli, tmp_path):
    out = str(tmp_path / "history")
    spark.range(0, 6, numPartitions=2).write.format("mosaicrs") \
        .option("metadata.run", "first").save(out)
    spark.sparkContext.setJobDescription("nightly append")
    try:
        spark.range(6, 10, numPartitions=1).write.format("mosaicrs").mode("append") \
            .option("metadata.run", "nightly").option("METADATA.Owner", "ml-team").save(out)
    finally:
        spark.sparkContext.setJobDescription(None)
    spark.range(100, 103, numPartitions=1).write.format("mosaicrs").mode("overwrite").save(out)

    def read():  # a fresh reader: .option() changes the one it is called on
        return spark.read.format("mosaicrs")

    assert ids(read().load(out)) == [100, 101, 102]
    assert ids(read().option("versionAsOf", 0).load(out)) == list(range(6))
    assert ids(read().option("versionAsOf", "1").load(out)) == list(range(10))

    log = json.loads(run_cli(mosaicrs_cli, "log", out, "--json").stdout)
    assert [(v["version"], v["commit"]["operation"], v["rows"]) for v in log] == [
        (2, "overwrite", 3), (1, "append", 10), (0, "create", 6)]
    appended = log[1]["commit"]
    assert appended["metadata"] == {"run": "nightly", "Owner": "ml-team"}
    assert appended["writer"]["engine"] == "spark"
    assert appended["writer"]["spark.app.id"] == spark.sparkContext.applicationId
    assert appended["writer"]["spark.app.name"] == spark.sparkContext.appName
    assert appended["writer"]["spark.version"] == spark.version
    assert appended["writer"]["query"] == "nightly append"
    assert "query" not in log[0]["commit"]["writer"]

    # timestampAsOf: the newest version committed at or before the time
    # (Spark evaluates the string in the session's time zone; UTC given here).
    at = datetime.datetime.fromtimestamp(appended["committed_at_ms"] / 1000, datetime.timezone.utc)
    when = at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"
    assert ids(read().option("timestampAsOf", when).load(out)) == list(range(10))

    with pytest.raises(Exception, match="version 7") as missing:
        read().option("versionAsOf", 7).load(out).collect()
    assert "MosaicrsVersionNotFoundException" in str(missing.value) or \
        "MosaicrsVersionNotFoundException" in repr(missing.value)
