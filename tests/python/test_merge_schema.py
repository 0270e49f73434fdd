"""Appends with merge_schema: added nullable columns, read as nulls for the
older rows through pyarrow and the torch Loader. Mirrors
rust-core/tests/merge_schema.rs."""

from pathlib import Path

import pyarrow as pa
import pytest

import mosaicrs


def _rows(first: int, n: int, label: bool) -> pa.Table:
    ids = list(range(first, first + n))
    columns = {"id": pa.array(ids, pa.int64()), "x": pa.array([i / 2 for i in ids], pa.float32())}
    if label:
        columns["label"] = pa.array([i * 10 for i in ids], pa.int64())
    return pa.table(columns)


@pytest.fixture
def merged(tmp_path: Path) -> Path:
    """12 rows without ``label`` (two shards, one zstd), then 4 rows with it."""
    path = tmp_path / "merged"
    mosaicrs.write(_rows(0, 6, False), path, batch_rows=4)
    mosaicrs.write(_rows(6, 6, False), path, "append", compression="zstd")
    result = mosaicrs.write(_rows(12, 4, True), path, "append", merge_schema=True)
    assert result.total_rows == 16
    return path


def test_older_rows_read_the_added_column_as_nulls(merged: Path) -> None:
    ds = mosaicrs.Dataset(merged)
    assert ds.schema.names == ["id", "x", "label"]
    assert ds.schema.field("label").type == pa.int64()
    back = pa.table(ds)
    assert back.column("id").to_pylist() == list(range(16))
    assert back.column("label").to_pylist() == [None] * 12 + [120, 130, 140, 150]
    taken = ds.take([15, 2, 7], columns=["label", "id"])
    assert taken.to_pydict() == {"label": [150, None, None], "id": [15, 2, 7]}
    ds.verify()


def test_an_added_column_needs_merge_schema_and_other_changes_stay_refused(
    merged: Path,
) -> None:
    with pytest.raises(ValueError, match=r'"extra".*mergeSchema'):
        mosaicrs.write(
            _rows(0, 2, True).append_column("extra", pa.array([1.0, 2.0])), merged, "append"
        )
    retyped = _rows(0, 2, True).set_column(1, "x", pa.array([0.0, 0.5], pa.float64()))
    with pytest.raises(ValueError, match=r'"x".*Float64'):
        mosaicrs.write(retyped, merged, "append", merge_schema=True)
    assert mosaicrs.Dataset(merged).num_rows == 16


def test_the_loader_names_or_fills_the_nulls(merged: Path) -> None:
    mt = pytest.importorskip("mosaicrs.torch")
    loader = mt.Loader(merged, 16, features=["x"], label="label", shuffle=False)
    with pytest.raises(ValueError, match=r'"label".*row 0'):
        next(iter(loader))
    filled = mt.Loader(
        merged, 16, features=["x"], label="label", shuffle=False, null_policy=-1.0
    )
    x, y = next(iter(filled))
    assert y.tolist() == [-1] * 12 + [120, 130, 140, 150]
    assert x[:, 0].tolist() == [i / 2 for i in range(16)]
