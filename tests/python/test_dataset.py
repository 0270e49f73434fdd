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


def test_dataset_is_not_picklable_by_accident(ids_dataset):
    ds = mosaicrs.Dataset(ids_dataset)
    with pytest.raises(Exception):
        pickle.dumps(ds)

