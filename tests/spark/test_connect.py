"""mosaicrs through Spark Connect: a client (`SparkSession.builder.remote`)
drives a Spark Connect server, a separate JVM started from the installed
pyspark with the 4.x connector jar on its `--jars`. Writes in every save
mode, reads, SQL tables and the jar-free Python data source run on the
server; their results are read back from disk (pyarrow) and through Connect,
and failures reach the client with their cause in the message.

Spark 3.5's pyspark ships no Connect server, so the module runs on 4.x only.
"""

import os
import subprocess
import sys
from pathlib import Path

import pyspark
import pytest

from .conftest import SPARK_4

if not SPARK_4:
    pytest.skip("the pyspark 3.5 package ships no Spark Connect server", allow_module_level=True)

from pyspark.sql import functions as F  # noqa: E402

from .readback import read_table  # noqa: E402
from .standalone import free_port, wait_for_port  # noqa: E402

ROWS = 600


@pytest.fixture(scope="module")
def connect_server(connector_jar, tmp_path_factory):
    """`sc://localhost:<port>` of a Spark Connect server (`local[2]`: a task
    that fails, fails its job at once) with the connector jar, stopped
    when the module ends."""
    root = tmp_path_factory.mktemp("connect-server")
    port = free_port()
    spark_home = Path(pyspark.__file__).parent
    log = root / "server.log"
    server = subprocess.Popen(
        [str(spark_home / "bin" / "spark-submit"), "--master", "local[2]",
         "--class", "org.apache.spark.sql.connect.service.SparkConnectServer",
         "--jars", str(connector_jar),
         "--conf", f"spark.connect.grpc.binding.port={port}",
         "--conf", "spark.connect.grpc.binding.address=127.0.0.1",
         "--conf", "spark.ui.enabled=false",
         "--conf", "spark.log.level=ERROR",
         "--conf", "spark.sql.shuffle.partitions=4",
         "--conf", f"spark.sql.warehouse.dir={root / 'warehouse'}"],
        # The server's Python workers (UDFs, the Python data source) run
        # this interpreter, with its pyspark and mosaicrs.
        env={**os.environ, "SPARK_HOME": str(spark_home), "PYSPARK_PYTHON": sys.executable},
        cwd=root, stdout=log.open("w"), stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, server, "the Spark Connect server", log)
        yield f"sc://localhost:{port}"
    finally:
        server.kill()
        server.wait()


@pytest.fixture(scope="module")
def remote(connect_server):
    """A Spark Connect client session.

    The suite's classic session (the `spark` fixture) may already run in this
    process, and `pyspark.sql.SparkSession.builder.remote(...)` refuses to
    start a client next to it; the Connect builder does not. pyspark picks
    the Connect or the classic implementation of `functions` and `udf` by
    SPARK_CONNECT_MODE_ENABLED: set while this module runs, and removed at
    its end so that later modules get the classic ones.
    """
    from pyspark.sql.connect.session import SparkSession as ConnectSession

    with pytest.MonkeyPatch.context() as env:
        env.setenv("SPARK_CONNECT_MODE_ENABLED", "1")
        session = ConnectSession.builder.remote(connect_server).getOrCreate()
        try:
            yield session
        finally:
            session.stop()


def frame(spark, start, stop, partitions=2):
    """Rows `start..stop`: a long, a double, an int, a string and an array<float>."""
    return spark.range(start, stop, numPartitions=partitions).select(
        "id", (F.col("id") * 1.5).alias("x"), (F.col("id") % 3).cast("int").alias("label"),
        F.concat(F.lit("s"), F.col("id").cast("string")).alias("s"),
        F.array(F.col("id").cast("float"), F.lit(1.0).cast("float")).alias("emb"))


def expected_rows(ids):
    return [{"id": i, "x": i * 1.5, "label": i % 3, "s": f"s{i}", "emb": [float(i), 1.0]}
            for i in ids]


def on_disk(dataset: Path):
    """The dataset's rows as the shards hold them (pyarrow), sorted by id."""
    table = read_table(dataset)
    return [] if table is None else sorted(table.to_pylist(), key=lambda r: r["id"])


def through_connect(remote, dataset: Path):
    """The dataset's rows read by `spark.read.format("mosaicrs")` on the server, sorted by id."""
    rows = remote.read.format("mosaicrs").load(str(dataset)).collect()
    return sorted((r.asDict() for r in rows), key=lambda r: r["id"])


def test_four_save_modes(remote, tmp_path):
    out = tmp_path / "modes"

    # pyspark 4.0's Connect client spells errorifexists "error" (it refuses
    # "errorifexists" itself, before sending the plan).
    frame(remote, 0, ROWS).write.format("mosaicrs").mode("error").save(str(out))
    assert on_disk(out) == expected_rows(range(ROWS))
    index = (out / "index.json").read_bytes()
    with pytest.raises(Exception, match="already exists") as failure:
        frame(remote, ROWS, ROWS + 10).write.format("mosaicrs").save(str(out))
    assert str(out) in str(failure.value)
    assert (out / "index.json").read_bytes() == index

    frame(remote, ROWS, ROWS + 200, partitions=3).write.format("mosaicrs") \
        .mode("append").save(str(out))
    assert on_disk(out) == expected_rows(range(ROWS + 200))
    assert through_connect(remote, out) == expected_rows(range(ROWS + 200))

    frame(remote, 5000, 5050).write.format("mosaicrs").mode("overwrite").save(str(out))
    assert on_disk(out) == expected_rows(range(5000, 5050))

    frame(remote, 0, 10).write.format("mosaicrs").mode("ignore").save(str(out))
    assert on_disk(out) == expected_rows(range(5000, 5050))
    fresh = tmp_path / "fresh"
    frame(remote, 0, 10).write.format("mosaicrs").mode("ignore").save(str(fresh))
    assert through_connect(remote, fresh) == expected_rows(range(10))


def test_read_with_a_filter_and_a_projection(remote, tmp_path):
    out = tmp_path / "read"
    frame(remote, 0, ROWS, partitions=3).write.format("mosaicrs").save(str(out))
    df = remote.read.format("mosaicrs").load(str(out))
    assert df.columns == ["id", "x", "label", "s", "emb"]

    rows = df.filter((F.col("label") == 2) & (F.col("id") < 100)).select("s", "x").collect()
    assert sorted((r.s, r.x) for r in rows) == sorted(
        (f"s{i}", i * 1.5) for i in range(100) if i % 3 == 2)
    counts = {r.label: r["count"] for r in df.groupBy("label").count().collect()}
    assert counts == {0: 200, 1: 200, 2: 200}


def test_sql_tables(remote, tmp_path):
    located = tmp_path / "located"
    frame(remote, 0, 100).write.format("mosaicrs").save(str(located))
    remote.sql("DROP TABLE IF EXISTS connect_located")
    remote.sql("DROP TABLE IF EXISTS connect_saved")
    try:
        remote.sql(f"CREATE TABLE connect_located USING mosaicrs LOCATION '{located}'")
        remote.sql("INSERT INTO connect_located SELECT id, id * 1.5, CAST(id % 3 AS INT), "
                   "concat('s', CAST(id AS STRING)), array(CAST(id AS FLOAT), CAST(1 AS FLOAT)) "
                   "FROM range(100, 130)")
        [total] = remote.sql("SELECT count(*) AS n, sum(id) AS ids FROM connect_located").collect()
        assert (total.n, total.ids) == (130, sum(range(130)))
        assert on_disk(located) == expected_rows(range(130))

        saved = tmp_path / "saved"
        frame(remote, 0, 40).write.format("mosaicrs").option("path", str(saved)) \
            .saveAsTable("connect_saved")
        frame(remote, 40, 50).write.format("mosaicrs").mode("append").saveAsTable("connect_saved")
        rows = remote.sql("SELECT id, s FROM connect_saved WHERE id >= 35 ORDER BY id").collect()
        assert [(r.id, r.s) for r in rows] == [(i, f"s{i}") for i in range(35, 50)]
        assert on_disk(saved) == expected_rows(range(50))
    finally:
        # External tables: dropping them keeps the datasets.
        remote.sql("DROP TABLE IF EXISTS connect_located")
        remote.sql("DROP TABLE IF EXISTS connect_saved")
    assert (located / "index.json").exists() and (saved / "index.json").exists()


def test_the_python_data_source(remote, tmp_path):
    mosaicrs = pytest.importorskip("mosaicrs", reason="run `make python` to install the wheel")
    from mosaicrs.spark import FORMAT, register

    # Registered by the client; the server's Python workers import mosaicrs.
    register(remote)
    out = tmp_path / "py"
    frame(remote, 0, 300).write.format(FORMAT).mode("overwrite").option("compression", "lz4") \
        .save(str(out))
    frame(remote, 300, 400).write.format(FORMAT).mode("append").save(str(out))
    assert on_disk(out) == expected_rows(range(400))
    dataset = mosaicrs.Dataset(str(out))
    assert len(dataset) == 400
    dataset.verify()

    with pytest.raises(Exception, match="already exists"):
        frame(remote, 0, 5).write.format(FORMAT).mode("append").option("saveMode", "error") \
            .save(str(out))
    with pytest.raises(Exception, match="compression") as failure:
        frame(remote, 0, 5).write.format(FORMAT).mode("append").option("compression", "gzip") \
            .save(str(out))
    assert "gzip" in str(failure.value)
    assert on_disk(out) == expected_rows(range(400))


@pytest.mark.parametrize("option, value, expected", [
    ("compression", "gzip", "invalid value 'gzip' for mosaicrs option 'compression'"),
    ("shardSize", "lots", "'shardSize'"),
    ("batchRows", "0", "'batchRows'"),
])
def test_a_bad_option_names_it(remote, tmp_path, option, value, expected):
    out = tmp_path / "never"
    with pytest.raises(Exception) as failure:
        frame(remote, 0, 10).write.format("mosaicrs").option(option, value).save(str(out))
    assert expected in str(failure.value)
    assert not (out / "index.json").exists()


def test_a_failing_task_names_its_cause(remote, tmp_path):
    out = tmp_path / "failed"

    def check(i):
        if i == 77:
            raise ValueError(f"row {i} has no label")
        return i

    with pytest.raises(Exception, match="row 77 has no label"):
        frame(remote, 0, 100).withColumn("id", F.udf(check, "long")("id")) \
            .write.format("mosaicrs").save(str(out))
    assert not (out / "index.json").exists()

    # The connector's own check, in the task: a row of another length.
    ragged = frame(remote, 0, 100).withColumn(
        "emb", F.when(F.col("id") == 42, F.array(F.lit(1.0).cast("float"))).otherwise(F.col("emb")))
    with pytest.raises(Exception) as failure:
        ragged.write.format("mosaicrs").option("fixedLength.emb", "2").save(str(out))
    assert 'column "emb" holds 1 values' in str(failure.value)
    assert "fixedLength.emb=2" in str(failure.value)
    assert not (out / "index.json").exists()
