"""mosaicrs.Dataset: values, schema, take, the Arrow PyCapsule interface, errors."""

import pickle

import numpy as np
import pyarrow as pa
import pytest

import mosaicrs


def test_dataset_reads_back_every_type(types_dataset):
    path, table = types_dataset
    ds = mosaicrs.Dataset(path)
    assert len(ds) == table.num_rows == ds.num_rows
    assert ds.num_shards > 1
    assert ds.schema.equals(table.schema)
    back = pa.table(ds)  # __arrow_c_stream__
    assert back.equals(table)
    ds.verify()


def test_take_returns_rows_in_the_order_asked(types_dataset):
    path, table = types_dataset
    ds = mosaicrs.Dataset(str(path))
    idx = [999, 0, 517, 517, 3]
    got = ds.take(idx)
    assert isinstance(got, pa.Table)
    assert got.equals(table.take(idx))
    got = ds.take(np.array([5, 4]), columns=["name", "f64"])
    assert got.column_names == ["name", "f64"]
    assert got.column("name").to_pylist() == ["row-5", "row-4"]


def test_polars_and_pyarrow_read_the_capsule(types_dataset):
    pl = pytest.importorskip("polars")
    path, table = types_dataset
    ds = mosaicrs.Dataset(path)
    df = pl.DataFrame(ds)
    assert df.height == table.num_rows
    assert df["id"].to_list() == table.column("id").to_pylist()
    assert df["name"].to_list() == table.column("name").to_pylist()
    reader = pa.RecordBatchReader.from_stream(ds)
    assert reader.read_all().equals(table)
    assert pa.schema(ds).equals(table.schema)  # __arrow_c_schema__


def test_missing_dataset_is_file_not_found_naming_it(tmp_path):
    missing = tmp_path / "nothing-here"
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        mosaicrs.Dataset(missing)
    missing.mkdir()
    with pytest.raises(FileNotFoundError, match="index.json"):
        mosaicrs.Dataset(missing)


def test_file_urls_read_and_local_paths_refuse_storage_options(ids_dataset):
    with pytest.raises(ValueError, match="storage_options"):
        mosaicrs.Dataset(ids_dataset, storage_options={"region": "x"})
    ds = mosaicrs.Dataset(f"file://{ids_dataset}")
    assert len(ds) == 1000


def test_take_errors(ids_dataset):
    ds = mosaicrs.Dataset(ids_dataset)
    with pytest.raises(IndexError, match="1000"):
        ds.take([1000])
    with pytest.raises(ValueError, match="negative"):
        ds.take([-1])
    with pytest.raises(ValueError, match="nope"):
        ds.take([1], columns=["nope"])


def test_a_local_dataset_is_mapped_and_feeds_the_loader(ids_dataset):
    ds = mosaicrs.Dataset(ids_dataset)
    assert not ds.is_streamed and "streamed" not in repr(ds)
    assert ds.bytes_downloaded == 0 and ds.peak_cache_bytes == 0
    assert ds.local_path == str(ids_dataset) and ds.path == str(ids_dataset)
    assert not hasattr(mosaicrs._native, "Source")  # one class for one dataset
    torch = pytest.importorskip("torch")
    from mosaicrs.torch import IterableDataset, Loader

    loader = Loader(ds, 100, columns=["id"], shuffle=False)
    assert loader.dataset is ds
    assert torch.cat([b["id"] for b in loader]).tolist() == list(range(1000))
    loader.close()
    iterable = IterableDataset(ds, 250, columns=["x"], shuffle=False)
    assert torch.cat([b["x"] for b in iterable]).tolist() == [i / 4 for i in range(1000)]
    iterable.close()


def test_dataset_is_not_picklable_by_accident(ids_dataset):
    ds = mosaicrs.Dataset(ids_dataset)
    with pytest.raises(Exception):
        pickle.dumps(ds)


def test_duckdb_reads_the_capsule(types_dataset):
    import duckdb

    path, table = types_dataset
    ds = mosaicrs.Dataset(path)
    con = duckdb.connect()
    # DuckDB scans the Python variable `ds` through __arrow_c_stream__.
    names = ["id", "i32", "u64", "f32", "f64", "flag", "day", "name", "emb"]
    got = con.execute(f"SELECT {', '.join(names)} FROM ds ORDER BY id").fetchall()
    want = table.select(names).to_pylist()
    assert [list(row) for row in got] == [[r[n] for n in names] for r in want]
    count, total, top = con.execute(
        "SELECT count(*), sum(f64), max(name) FROM ds WHERE flag"
    ).fetchone()
    flags = table.column("flag").to_numpy(zero_copy_only=False)
    assert count == int(flags.sum())
    assert total == pytest.approx(float(table.column("f64").to_numpy()[flags].sum()))
    assert top == max(n for n, f in zip(table.column("name").to_pylist(), flags) if f)


def test_ragged_lists_strings_and_nulls_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    n = 500
    lengths = rng.integers(0, 7, n)
    ragged = [None if k % 11 == 0 else [int(v) for v in rng.integers(-99, 99, lengths[k])]
              for k in range(n)]
    words = [None if k % 7 == 0 else "é" * int(lengths[k]) + f"-{k}" for k in range(n)]
    nested = [[f"t{k}"] * int(lengths[k]) for k in range(n)]
    table = pa.table({
        "id": pa.array(np.arange(n, dtype=np.int64)),
        "ragged": pa.array(ragged, pa.list_(pa.int64())),
        "big": pa.array(ragged, pa.large_list(pa.int32())),
        "word": pa.array(words, pa.string()),
        "blob": pa.array([None if w is None else w.encode() for w in words], pa.binary()),
        "tags": pa.array(nested, pa.list_(pa.string())),
    })
    path = tmp_path / "ragged.mosaicrs"
    mosaicrs.write(table, path, shard_size="8k", batch_rows=64)
    ds = mosaicrs.Dataset(path)
    assert ds.num_shards > 1
    assert pa.table(ds).equals(table)
    idx = [499, 0, 77, 77, 250, 11, 1]
    assert ds.take(idx).equals(table.take(idx))
    assert ds.take(idx, columns=["tags", "word"]).equals(table.select(["tags", "word"]).take(idx))

    import mosaicrs.torch as mt

    # Tensors need a fixed shape: the loader refuses these columns by name,
    # when it is made or, for a list whose rows differ in length, when it reads one.
    for column in ("ragged", "word", "tags"):
        with pytest.raises(ValueError, match=column):
            for _ in mt.Loader(path, 8, features=[column], label="id", shuffle=False):
                pass
