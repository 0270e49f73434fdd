"""Packed columns and fixed-size lists: `mosaicrs.write(pack=..., fixed_lengths=...)`
stores them row-major, any Arrow reader opens the shards, and the loader reads
them as `[B, F]`."""

import glob
import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.ipc
import pytest

import mosaicrs

F = 16
ROWS = 3000


def tabular():
    rng = np.random.default_rng(7)
    columns = {f"x{j}": pa.array(rng.standard_normal(ROWS, dtype=np.float32)) for j in range(F)}
    columns["id"] = pa.array(np.arange(ROWS, dtype=np.int64))
    return pa.table(columns)


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("packed") / "ds")
    table = tabular()
    mosaicrs.write(table, path, pack={"features": [f"x{j}" for j in range(F)]}, batch_rows=500)
    return path, table


def expected_features(table):
    return np.stack([table.column(f"x{j}").to_numpy() for j in range(F)], axis=1)


def test_packed_columns_are_one_row_major_fixed_size_list(packed):
    path, table = packed
    ds = mosaicrs.Dataset(path)
    field = ds.schema.field("features")
    assert field.type == pa.list_(pa.float32(), F)
    assert ds.schema.names == ["features", "id"]
    assert json.loads(field.metadata[b"mosaicrs.packed_columns"]) == [f"x{j}" for j in range(F)]
    got = pa.table(ds)
    values = got.column("features").combine_chunks().flatten().to_numpy()
    np.testing.assert_array_equal(values.reshape(ROWS, F), expected_features(table))
    assert got.column("id").to_pylist() == list(range(ROWS))


def test_any_arrow_reader_opens_the_packed_shards(packed):
    path, table = packed
    shards = sorted(glob.glob(os.path.join(path, "*.arrow")))
    assert shards
    read = pa.concat_tables(pa.ipc.open_file(s).read_all() for s in shards)
    read = read.sort_by("id")
    matrix = read.column("features").combine_chunks().flatten().to_numpy().reshape(ROWS, F)
    np.testing.assert_array_equal(matrix, expected_features(table))


def test_polars_reads_packed_columns_as_arrays(packed):
    pl = pytest.importorskip("polars")
    path, table = packed
    df = pl.DataFrame(mosaicrs.Dataset(path))
    assert df["features"].dtype == pl.Array(pl.Float32, F)
    np.testing.assert_array_equal(df["features"].to_numpy(), expected_features(table))
    assert df["id"].to_list() == list(range(ROWS))


def test_the_loader_reads_packed_features_as_b_by_f(packed):
    torch = pytest.importorskip("torch")
    from mosaicrs.torch import Loader

    path, table = packed
    want = torch.from_numpy(expected_features(table))
    loader = Loader(path, 64, features=["features"], label="id", shuffle=True, seed=3)
    seen = []
    for x, ids in loader:
        assert x.shape == (64, F) and x.dtype == torch.float32
        torch.testing.assert_close(x, want[ids], rtol=0, atol=0)
        seen.extend(ids.tolist())
    # Every sample at most once; drop_last leaves out ROWS % 64 of them.
    assert len(seen) == len(loader) * 64 == ROWS - ROWS % 64
    assert len(set(seen)) == len(seen) and set(seen) <= set(range(ROWS))


def test_fixed_lengths_store_fixed_size_lists_and_check_every_row(tmp_path):
    emb = pa.array([[float(i), i + 0.5, -float(i)] for i in range(100)], pa.list_(pa.float32()))
    table = pa.table({"emb": emb, "id": pa.array(range(100), pa.int64())})
    path = str(tmp_path / "fixed")
    mosaicrs.write(table, path, fixed_lengths={"emb": 3})
    ds = mosaicrs.Dataset(path)
    assert ds.schema.field("emb").type == pa.list_(pa.float32(), 3)
    assert pa.table(ds).column("emb").to_pylist() == emb.to_pylist()

    ragged = pa.table({"emb": pa.array([[1.0, 2.0, 3.0], [1.0]], pa.list_(pa.float32()))})
    with pytest.raises(ValueError, match=r'"emb".*row 1|row 1.*"emb"'):
        mosaicrs.write(ragged, str(tmp_path / "ragged"), fixed_lengths={"emb": 3})
    assert not os.path.exists(os.path.join(tmp_path, "ragged", "index.json"))


@pytest.mark.parametrize("kwargs, message", [
    ({"pack": {"features": ["x0", "nope"]}}, '"nope"'),
    ({"pack": {"features": ["x0", "name"]}}, '"name".*only integer and floating-point'),
    ({"pack": {"features": "x0,x1"}}, "must be a list of column names"),
    ({"fixed_lengths": {"x0": 4}}, "neither a list"),
    ({"fixed_lengths": {"x0": 0}}, "positive length"),
])
def test_bad_layouts_fail_before_writing_naming_the_column(tmp_path, kwargs, message):
    table = pa.table({"x0": [1.0], "x1": [2.0], "name": ["a"]})
    path = tmp_path / "bad"
    with pytest.raises(ValueError, match=message):
        mosaicrs.write(table, str(path), **kwargs)
    assert not path.exists() or not any(path.iterdir())
