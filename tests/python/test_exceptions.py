"""mosaicrs.exceptions: every class raised for real, each one also the
built-in exception that callers caught before it existed."""

import json
import pickle

import numpy as np
import pyarrow as pa
import pytest

from moto_server import MotoServer

mosaicrs = pytest.importorskip(
    "mosaicrs", reason="the mosaicrs wheel is not installed: run `make python`"
)
mx = mosaicrs.exceptions

# Each class and the built-ins it must also be.
BUILTINS = {
    "MosaicrsError": (Exception,),
    "InvalidInputError": (ValueError,),
    "SchemaMismatchError": (ValueError,),
    "ColumnNotFoundError": (ValueError,),
    "RowOutOfRangeError": (ValueError, IndexError),
    "CacheTooSmallError": (ValueError,),
    "DatasetNotFoundError": (FileNotFoundError,),
    "DatasetExistsError": (FileExistsError,),
    "CommitConflictError": (OSError,),
    "CorruptDataError": (OSError,),
    "MissingShardError": (FileNotFoundError,),
    "UnsupportedVersionError": (OSError,),
    "VersionNotFoundError": (LookupError,),
    "StorageError": (OSError,),
    "InternalError": (RuntimeError,),
}


def ints(values) -> pa.Table:
    return pa.table({"x": pa.array(values, pa.int64())})


def shards(path):
    return [s["path"] for s in json.loads((path / "index.json").read_text())["shards"]]


def kept_shards(path):
    """Shards that the kept version records list (an overwrite keeps the old ones)."""
    records = sorted((path / "_versions").glob("*.json"))
    return [s["path"] for r in records for s in json.loads(r.read_text())["shards"]]


def test_every_class_is_a_mosaicrs_error_and_its_builtin():
    assert sorted(mx.__all__) == sorted(BUILTINS)
    for name, builtins in BUILTINS.items():
        cls = getattr(mx, name)
        assert issubclass(cls, mx.MosaicrsError) and issubclass(cls, builtins), name
        assert getattr(mosaicrs, name) is cls and name in mosaicrs.__all__
        assert cls.__module__ == "mosaicrs.exceptions" and cls.__doc__
    assert issubclass(mx.MissingShardError, mx.CorruptDataError)
    for name in ("SchemaMismatchError", "ColumnNotFoundError", "RowOutOfRangeError",
                 "CacheTooSmallError"):
        assert issubclass(getattr(mx, name), mx.InvalidInputError), name
    # Raised errors pickle (multiprocessing, torch workers) with their class.
    back = pickle.loads(pickle.dumps(mx.CommitConflictError("lost the race")))
    assert type(back) is mx.CommitConflictError and str(back) == "lost the race"


def test_a_lost_commit_race_is_a_commit_conflict(tmp_path):
    """Two writers overwrite one dataset: the second commits while the first
    still streams its batches, so the first one's commit loses."""
    path = tmp_path / "race"
    mosaicrs.write(ints(range(10)), path)
    schema = pa.schema([("x", pa.int64())])

    def batches():
        yield pa.record_batch([pa.array(range(100, 105), pa.int64())], schema=schema)
        mosaicrs.write(ints([1000, 1001, 1002]), path, mode="overwrite")
        yield pa.record_batch([pa.array(range(105, 110), pa.int64())], schema=schema)

    reader = pa.RecordBatchReader.from_batches(schema, batches())
    with pytest.raises(mx.CommitConflictError, match="another writer changed the dataset") as lost:
        mosaicrs.write(reader, path, mode="overwrite")
    assert isinstance(lost.value, OSError) and str(path) in str(lost.value)
    # The winner's dataset stands, and the loser left no shard behind.
    assert pa.table(mosaicrs.Dataset(path)).column("x").to_pylist() == [1000, 1001, 1002]
    files = sorted(p.name for p in path.iterdir() if p.name != "_versions")
    assert files == sorted(set(shards(path) + kept_shards(path)) | {"index.json"})


def test_a_lost_commit_race_in_an_object_store(moto_server, tmp_path):
    moto_server.create_bucket("race")
    opts = moto_server.storage_options()
    url = "s3://race/ds"
    mosaicrs.write(ints(range(10)), url, storage_options=opts)
    schema = pa.schema([("x", pa.int64())])

    def batches():
        yield pa.record_batch([pa.array(range(100, 105), pa.int64())], schema=schema)
        mosaicrs.write(ints([7]), url, mode="overwrite", storage_options=opts)
        yield pa.record_batch([pa.array(range(105, 110), pa.int64())], schema=schema)

    reader = pa.RecordBatchReader.from_batches(schema, batches())
    with pytest.raises(mx.CommitConflictError) as lost:
        mosaicrs.write(reader, url, mode="overwrite", storage_options=opts)
    assert isinstance(lost.value, OSError) and url in str(lost.value)
    assert MotoServer.SECRET_KEY not in str(lost.value)
    ds = mosaicrs.Dataset(url, opts, cache_dir=tmp_path / "cache")
    assert pa.table(ds).column("x").to_pylist() == [7]


def test_an_existing_dataset_with_mode_error(tmp_path):
    path = tmp_path / "exists"
    mosaicrs.write(ints([1, 2]), path)
    with pytest.raises(mx.DatasetExistsError, match="already exists") as exists:
        mosaicrs.write(ints([3]), path, mode="error")
    assert isinstance(exists.value, FileExistsError)
    assert pa.table(mosaicrs.Dataset(path)).column("x").to_pylist() == [1, 2]


def test_a_missing_path_and_a_missing_shard(tmp_path):
    with pytest.raises(mx.DatasetNotFoundError, match="index.json not found") as missing:
        mosaicrs.Dataset(tmp_path / "nothing-here")
    assert isinstance(missing.value, FileNotFoundError)

    path = tmp_path / "holes"
    mosaicrs.write(ints(range(1000)), path, shard_size="4k", batch_rows=64)
    gone = shards(path)[1]
    (path / gone).unlink()
    with pytest.raises(mx.MissingShardError, match=gone) as hole:
        mosaicrs.Dataset(path)
    assert isinstance(hole.value, FileNotFoundError)
    assert isinstance(hole.value, mx.CorruptDataError)


def test_corrupt_shards_and_index(tmp_path):
    path = tmp_path / "damaged"
    values = np.arange(1000) * 1.000001 + 0.123
    mosaicrs.write(pa.table({"x": values}), path, shard_size="4k", batch_rows=64)
    first, second = shards(path)[:2]

    # One flipped bit in a value (row 3, in the first shard): the checksum tells.
    data = bytearray((path / first).read_bytes())
    at = data.find(values[3].tobytes())
    assert at > 0
    data[at + 7] ^= 0x80
    (path / first).write_bytes(bytes(data))
    ds = mosaicrs.Dataset(path)
    with pytest.raises(mx.CorruptDataError, match="checksum mismatch") as flipped:
        ds.verify()
    assert isinstance(flipped.value, OSError)

    # A truncated shard is refused when the dataset is opened.
    (path / second).write_bytes((path / second).read_bytes()[:100])
    with pytest.raises(mx.CorruptDataError, match=second) as truncated:
        mosaicrs.Dataset(path)
    assert isinstance(truncated.value, OSError)

    index = path / "index.json"
    newer = json.loads(index.read_text())
    newer["format_version"] = 99
    index.write_text(json.dumps(newer))
    with pytest.raises(mx.UnsupportedVersionError, match="99") as version:
        mosaicrs.Dataset(path)
    assert isinstance(version.value, OSError)

    index.write_text("{ not json")
    with pytest.raises(mx.CorruptDataError, match="invalid index") as garbage:
        mosaicrs.Dataset(path)
    assert isinstance(garbage.value, OSError)


def test_bad_options_columns_rows_and_schemas(tmp_path):
    path = tmp_path / "opts"
    with pytest.raises(mx.InvalidInputError, match="compression") as bad:
        mosaicrs.write(ints([1]), path, compression="gzip")
    assert isinstance(bad.value, ValueError)
    with pytest.raises(mx.InvalidInputError, match="cache_limit") as limit:
        mosaicrs.Dataset("s3://b/ds", {}, cache_limit="lots")
    assert isinstance(limit.value, ValueError)
    with pytest.raises(mx.InvalidInputError, match="storage_options"):
        mosaicrs.Dataset(tmp_path, {"aws_region": "x"})

    mosaicrs.write(ints(range(10)), path)
    with pytest.raises(mx.SchemaMismatchError) as schema:
        mosaicrs.write(pa.table({"y": [1.0]}), path, mode="append")
    assert isinstance(schema.value, ValueError)

    ds = mosaicrs.Dataset(path)
    with pytest.raises(mx.ColumnNotFoundError, match="nope") as column:
        ds.take([0], columns=["nope"])
    assert isinstance(column.value, ValueError)
    for row in (10, -1):
        with pytest.raises(mx.RowOutOfRangeError) as out_of_range:
            ds.take([0, row])
        assert isinstance(out_of_range.value, IndexError)
        assert isinstance(out_of_range.value, ValueError)


def test_a_store_that_refuses_a_write_is_a_storage_error(moto_server, tmp_path):
    url = "s3://no-such-bucket/ds"
    opts = moto_server.storage_options()
    with pytest.raises(mx.StorageError) as refused:
        mosaicrs.write(ints([1]), url, storage_options=opts)
    assert isinstance(refused.value, OSError) and url in str(refused.value)
    assert MotoServer.SECRET_KEY not in str(refused.value)
    # Reading finds no index there: no dataset, as for a local path.
    with pytest.raises(mx.DatasetNotFoundError) as missing:
        mosaicrs.Dataset(url, opts, cache_dir=tmp_path / "cache")
    assert isinstance(missing.value, FileNotFoundError)


def test_a_cache_too_small_for_the_shuffle(moto_server, tmp_path):
    pytest.importorskip("torch")
    from mosaicrs.torch import Loader

    moto_server.create_bucket("small")
    opts = moto_server.storage_options()
    url = "s3://small/ds"
    mosaicrs.write(ints(range(3000)), url, shard_size="4k", batch_rows=100, storage_options=opts)
    ds = mosaicrs.Dataset(url, opts, cache_dir=tmp_path / "cache", cache_limit="8k")
    assert ds.is_streamed
    with pytest.raises(mx.CacheTooSmallError, match="global shuffle") as small:
        Loader(ds, 10, columns=["x"], shuffle="global")
    assert isinstance(small.value, ValueError)


def test_a_resume_state_of_another_seed(tmp_path):
    pytest.importorskip("torch")
    from mosaicrs.torch import Loader

    path = tmp_path / "resume"
    mosaicrs.write(ints(range(100)), path)
    state = Loader(path, 10, columns=["x"], seed=1).state_dict()
    with pytest.raises(mx.InvalidInputError) as other:
        Loader(path, 10, columns=["x"], seed=2).load_state_dict(state)
    assert isinstance(other.value, ValueError)
