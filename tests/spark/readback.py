"""Reading a dataset back, through Spark (`spark.read.format("mosaicrs")`),
pyarrow and the Rust reader (CLI), and normalising Spark's and pyarrow's
Python values so they can be compared."""

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc

from conftest import run_cli
from pyspark.sql import types as T

from .conftest import load_index


def read_table(dataset: Path) -> pa.Table:
    """Every shard listed in the index, in order, read by pyarrow."""
    index = load_index(dataset)
    schema = None
    tables = []
    for shard in index["shards"]:
        with ipc.open_file(dataset / shard["path"]) as reader:
            schema = reader.schema
            tables.append(reader.read_all())
    if not tables:
        return None
    return pa.concat_tables(tables)


def check_with_rust_reader(cli, dataset: Path, rows: int) -> dict:
    """`mosaicrs validate` passes and `mosaicrs inspect --json` counts `rows`."""
    run_cli(cli, "validate", dataset)
    info = json.loads(run_cli(cli, "inspect", dataset, "--json").stdout)
    assert info["rows"] == rows, info
    return info


def normalise(value, data_type):
    """A Spark or pyarrow value as a plain Python value, guided by the Spark type."""
    if value is None:
        return None
    if isinstance(data_type, T.UserDefinedType):
        return normalise(data_type.serialize(value) if not isinstance(value, dict) else value,
                         data_type.sqlType())
    if isinstance(data_type, T.StructType):
        if isinstance(value, dict):
            items = value
        else:  # a Row, or a tuple from a UDT's serialize()
            items = dict(zip(data_type.names, value))
        return {f.name: normalise(items[f.name], f.dataType) for f in data_type.fields}
    if isinstance(data_type, T.ArrayType):
        return [normalise(v, data_type.elementType) for v in value]
    if isinstance(data_type, T.MapType):
        pairs = value.items() if isinstance(value, dict) else value
        return sorted((normalise(k, data_type.keyType), normalise(v, data_type.valueType))
                      for k, v in pairs)
    if isinstance(data_type, T.BinaryType):
        return bytes(value)
    if isinstance(data_type, T.TimestampType):
        # Spark gives naive local time, pyarrow an aware UTC datetime: compare instants.
        if value.tzinfo is None:
            value = value.astimezone()
        return value.astimezone(dt.timezone.utc)
    return value


def normalised_rows(rows, schema: T.StructType, key: str):
    """Rows (Spark Rows or pyarrow dicts) as normalised dicts, sorted by `key`."""
    out = []
    for row in rows:
        d = row if isinstance(row, dict) else row.asDict(recursive=False)
        out.append({f.name: normalise(d[f.name], f.dataType) for f in schema.fields})
    return sorted(out, key=lambda r: r[key])


def assert_dataset_equals(spark_df, dataset: Path, key: str = "id"):
    """The dataset holds exactly the DataFrame's rows (as a multiset, by `key`)."""
    expected = normalised_rows(spark_df.collect(), spark_df.schema, key)
    table = read_table(dataset)
    actual = [] if table is None else normalised_rows(table.to_pylist(), spark_df.schema, key)
    assert len(actual) == len(expected)
    assert [r[key] for r in actual] == [r[key] for r in expected]
    assert actual == expected


def read_with_spark(spark, path, **options):
    """`spark.read.format("mosaicrs").load(path)` with `options`."""
    reader = spark.read.format("mosaicrs")
    for key, value in options.items():
        reader = reader.option(key, value)
    return reader.load(str(path))


def rows_as_written(rows, schema: T.StructType, key="id"):
    """Rows read back by Spark, normalised by the written schema: a UDT
    column comes back as its SQL struct, which `normalise` takes as a dict."""
    udts = {f.name for f in schema.fields if isinstance(f.dataType, T.UserDefinedType)}
    dicts = []
    for row in rows:
        d = row.asDict(recursive=False)
        for name in udts:
            if d[name] is not None:
                d[name] = d[name].asDict(recursive=True)
        dicts.append(d)
    return normalised_rows(dicts, schema, key)


def assert_reads_back(spark_df, dataset_df, key="id"):
    """`dataset_df` (a Spark read of a dataset) holds exactly `spark_df`'s
    rows, every value equal, nulls included."""
    expected = normalised_rows(spark_df.collect(), spark_df.schema, key)
    actual = rows_as_written(dataset_df.collect(), spark_df.schema, key)
    assert len(actual) == len(expected)
    assert [r[key] for r in actual] == [r[key] for r in expected]
    assert actual == expected
