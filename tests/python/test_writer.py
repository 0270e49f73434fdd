"""mosaicrs.write: pyarrow, Polars and pandas input, save modes, options, errors."""

import json
import os

import numpy as np
import pyarrow as pa
import pytest

import mosaicrs

from .conftest import all_types_table


def files(path):
    """The files in the dataset folder (not the `_versions/` folder of records)."""
    return sorted(f for f in os.listdir(path) if f != "_versions")


def listed(path):
    """Shards that the head or a kept version record lists."""
    indexes = [path / "index.json", *sorted((path / "_versions").glob("*.json"))]
    return sorted({s["path"] for i in indexes for s in json.loads(i.read_text())["shards"]})


def test_write_roundtrip_and_options(tmp_path):
    table = all_types_table(3000)
    out = tmp_path / "t"
    result = mosaicrs.write(table, out, shard_size=32 * 1024, batch_rows=500, compression="zstd")
    assert result["committed"] and result["total_rows"] == 3000
    ds = mosaicrs.Dataset(out)
    assert ds.num_shards > 1
    assert pa.table(ds).equals(table)
    index = json.loads((out / "index.json").read_text())
    assert {s["compression"] for s in index["shards"]} == {"zstd"}
    # No stray files: exactly the listed shards and the index.
    assert files(out) == sorted(listed(out) + ["index.json"])


def test_save_modes(tmp_path):
    out = tmp_path / "m"
    a = pa.table({"x": np.arange(10, dtype=np.int64)})
    b = pa.table({"x": np.arange(10, 15, dtype=np.int64)})
    mosaicrs.write(a, out)
    with pytest.raises(FileExistsError, match="already exists"):
        mosaicrs.write(b, out)
    assert mosaicrs.write(b, out, mode="ignore")["committed"] is False
    assert len(mosaicrs.Dataset(out)) == 10
    mosaicrs.write(b, out, mode="append")
    assert sorted(pa.table(mosaicrs.Dataset(out)).column("x").to_pylist()) == list(range(15))
    mosaicrs.write(b, out, mode="overwrite")
    assert pa.table(mosaicrs.Dataset(out)).column("x").to_pylist() == list(range(10, 15))
    assert files(out) == sorted(listed(out) + ["index.json"])
    with pytest.raises(ValueError, match="mode"):
        mosaicrs.write(b, out, mode="upsert")


def test_append_with_another_schema_is_refused_before_writing(tmp_path):
    out = tmp_path / "s"
    mosaicrs.write(pa.table({"x": [1, 2]}), out)
    before = files(out)
    with pytest.raises(ValueError, match="append"):
        mosaicrs.write(pa.table({"y": [1.0]}), out, mode="append")
    assert files(out) == before


def test_pandas_polars_and_streams(tmp_path):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": np.arange(100, dtype=np.int64), "b": np.linspace(0, 1, 100)})
    mosaicrs.write(df, tmp_path / "pd")
    assert pa.table(mosaicrs.Dataset(tmp_path / "pd")).to_pandas().equals(df)

    pl = pytest.importorskip("polars")
    pdf = pl.DataFrame({"a": list(range(50)), "s": [f"v{i}" for i in range(50)]})
    mosaicrs.write(pdf, tmp_path / "pl")
    back = pl.DataFrame(mosaicrs.Dataset(tmp_path / "pl"))
    assert back["a"].to_list() == list(range(50)) and back["s"][7] == "v7"

    schema = pa.schema([("v", pa.int32())])
    batches = (pa.record_batch([pa.array([i] * 10, pa.int32())], schema=schema) for i in range(20))
    reader = pa.RecordBatchReader.from_batches(schema, batches)
    mosaicrs.write(reader, tmp_path / "stream", batch_rows=7)
    assert pa.table(mosaicrs.Dataset(tmp_path / "stream")).column("v").to_pylist() == \
        [i for i in range(20) for _ in range(10)]


def test_a_failing_stream_leaves_nothing(tmp_path):
    schema = pa.schema([("v", pa.int64())])

    def batches():
        for i in range(5):
            yield pa.record_batch([pa.array(np.arange(1000, dtype=np.int64))], schema=schema)
        raise RuntimeError("source broke")

    out = tmp_path / "broken"
    reader = pa.RecordBatchReader.from_batches(schema, batches())
    with pytest.raises(Exception, match="source broke"):
        mosaicrs.write(reader, out, shard_size=1024)
    assert not out.exists() or files(out) == []


def test_bad_options_are_named(tmp_path):
    t = pa.table({"x": [1]})
    with pytest.raises(ValueError, match="compression"):
        mosaicrs.write(t, tmp_path / "a", compression="gzip")
    with pytest.raises(ValueError, match="max_batch_rows"):
        mosaicrs.write(t, tmp_path / "b", batch_rows=0)
    with pytest.raises(ValueError, match="lots"):
        mosaicrs.write(t, tmp_path / "c", shard_size="lots")
    with pytest.raises(TypeError, match="cannot write"):
        mosaicrs.write(42, tmp_path / "d")
    with pytest.raises(ValueError, match="unknown S3 option"):
        mosaicrs.write(t, "s3://bucket/x", storage_options={"aws_color": "blue"})


def test_partition_writers_and_commit_publish_only_committed_attempts(tmp_path):
    out = tmp_path / "dist"
    schema = pa.schema([("x", pa.int64())])
    wid = mosaicrs._native.write_id()
    messages = []
    for part in range(3):
        # attempt 0 of partition 1 "fails" after writing shards; attempt 1 succeeds
        if part == 1:
            failed = mosaicrs.PartitionWriter(out, schema, wid, part, 100, shard_size=256)
            failed.write(pa.record_batch([pa.array(np.arange(500, dtype=np.int64))], schema=schema))
        w = mosaicrs.PartitionWriter(out, schema, wid, part, part, shard_size=256)
        w.write(pa.record_batch([pa.array(np.arange(part * 100, part * 100 + 100, dtype=np.int64))],
                                schema=schema))
        messages.append(w.finish())
    result = mosaicrs._native.commit(out, schema, wid, messages, "error")
    assert result["total_rows"] == 300
    assert sorted(pa.table(mosaicrs.Dataset(out)).column("x").to_pylist()) == list(range(300))
    assert files(out) == sorted(listed(out) + ["index.json"])


def test_write_result_is_typed(tmp_path):
    table = pa.table({"x": np.arange(1000, dtype=np.int64)})
    result = mosaicrs.write(table, tmp_path / "r", shard_size="4k", batch_rows=100)
    assert isinstance(result, mosaicrs.WriteResult)
    index = json.loads((tmp_path / "r" / "index.json").read_text())
    assert (result.rows, result.total_rows) == (1000, 1000)
    assert result.shards == len(index["shards"]) > 1
    assert result.bytes == index["total_bytes"]
    assert result.write_id == index["writes"][0]["write_id"]
    assert result.committed and result.removed == []
    assert result["shards"] == result.shards
    assert repr(result).startswith("mosaicrs.WriteResult(committed=True, rows=1000, ")
    with pytest.raises(KeyError):
        result["nope"]
    kept = mosaicrs.write(table, tmp_path / "r", mode="ignore")
    assert not kept.committed and kept.total_rows == 1000


def test_column_layout_is_checked_when_made(tmp_path):
    layout = mosaicrs.ColumnLayout(pack={"f": ["a", "b"]}, fixed_lengths={"emb": 2})
    assert layout.pack == {"f": ["a", "b"]} and layout.fixed_lengths == {"emb": 2}
    assert layout.options() == [("pack.f", "a,b"), ("fixedLength.emb", "2")]
    assert mosaicrs.ColumnLayout.from_options(layout.options()) == layout
    assert repr(layout) == "mosaicrs.ColumnLayout(pack={'f': ['a', 'b']}, fixed_lengths={'emb': 2})"
    assert not mosaicrs.ColumnLayout()
    with pytest.raises(ValueError, match="positive length"):
        mosaicrs.ColumnLayout(fixed_lengths={"emb": 0})
    with pytest.raises(ValueError, match="not a column layout option"):
        mosaicrs.ColumnLayout.from_options([("shardSize", "1m")])
    table = pa.table({"a": [1.0, 2.0], "b": [3.0, 4.0],
                      "emb": pa.array([[1.0, 2.0], [3.0, 4.0]], pa.list_(pa.float32()))})
    mosaicrs.write(table, tmp_path / "l", layout=layout)
    schema = mosaicrs.Dataset(tmp_path / "l").schema
    assert schema.names == ["f", "emb"]
    assert schema.field("emb").type == pa.list_(pa.float32(), 2)
    with pytest.raises(ValueError, match="not both"):
        mosaicrs.write(table, tmp_path / "m", layout=layout, pack={"g": ["a"]})


def test_spark_options_go_through_the_one_parser():
    rows = mosaicrs._native.spark_batch_rows
    assert rows([]) == 8192
    assert rows([("compression", "zstd")]) == 4096
    assert rows([("batchRows", "500"), ("compression", "lz4")]) == 500
    with pytest.raises(ValueError, match="unknown mosaicrs_py option 'shardsize2'"):
        rows([("shardsize2", "1m")], "mosaicrs_py")
    with pytest.raises(ValueError, match="invalid value 'lots' for mosaicrs option 'shardSize'"):
        rows([("shardSize", "lots")])
    schema = pa.schema([("a", pa.float64()), ("b", pa.float64())])
    stored = mosaicrs._native.stored_schema(schema, [("shardSize", "1m"), ("pack.f", "a,b")])
    assert stored.names == ["f"]
