"""A dataset written by the CLI (`mosaicrs convert`) reads into Spark with
the same values pyarrow reads from the source file, including Arrow types
that Spark's writer never produces (large strings and lists, nanosecond
timestamps, unsigned ints), which the reader converts to Spark's form."""

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import run_cli


def source_table(rows: int) -> pa.Table:
    def maybe(values, every):
        return [None if i % every == every - 1 else v for i, v in enumerate(values)]

    ids = list(range(rows))
    return pa.table({
        "id": pa.array(ids, pa.int64()),
        "flag": pa.array(maybe([i % 2 == 0 for i in ids], 5), pa.bool_()),
        "small": pa.array(maybe([i % 200 for i in ids], 6), pa.uint8()),
        "count": pa.array(maybe([i * 70000 for i in ids], 7), pa.uint32()),
        "x": pa.array(maybe([i / 4 for i in ids], 8), pa.float32()),
        "price": pa.array(maybe([Decimal(i) / 100 for i in ids], 9), pa.decimal128(12, 2)),
        "name": pa.array(maybe([f"name-{i}-é" * (i % 3) for i in ids], 4), pa.large_string()),
        "blob": pa.array(maybe([bytes([i % 256]) * (i % 5) for i in ids], 3), pa.large_binary()),
        "city": pa.array(maybe([["paris", "oslo", "lima"][i % 3] for i in ids], 11),
                         pa.string()),
        "day": pa.array(maybe([dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in ids], 10),
                        pa.date32()),
        # Whole microseconds, stored as nanoseconds: the reader converts the unit.
        "at": pa.array(maybe([1_600_000_000_000_000_000 + i * 1_000_123_000 for i in ids], 12),
                       pa.timestamp("ns", tz="UTC")),
        "scores": pa.array(maybe([[i, None, i + 1] if i % 4 else [] for i in ids], 13),
                           pa.large_list(pa.int32())),
    })


def as_python(value):
    if isinstance(value, dt.datetime):
        # pyarrow gives aware UTC datetimes, Spark naive local ones: compare instants.
        return value.astimezone(dt.timezone.utc)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, list):
        return [as_python(v) for v in value]
    return value


@pytest.mark.parametrize("compression", ["none", "zstd"])
def test_cli_converted_dataset_reads_like_the_source(spark, mosaicrs_cli, tmp_path, compression):
    table = source_table(3000)
    source = tmp_path / "source.parquet"
    pq.write_table(table, source, row_group_size=700)
    out = tmp_path / "converted"
    run_cli(mosaicrs_cli, "convert", source, out, "--compression", compression,
            "--shard-size", "32k")

    df = spark.read.format("mosaicrs").load(str(out))
    types = {f.name: f.dataType.simpleString() for f in df.schema.fields}
    assert types == {
        "id": "bigint", "flag": "boolean", "small": "smallint", "count": "bigint",
        "x": "float", "price": "decimal(12,2)", "name": "string", "blob": "binary",
        "city": "string", "day": "date", "at": "timestamp", "scores": "array<int>",
    }
    got = sorted((r.asDict() for r in df.collect()), key=lambda r: r["id"])
    expected = table.to_pylist()
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        e = {k: as_python(v) for k, v in e.items()}
        g = {k: as_python(v) for k, v in g.items()}
        assert g == e, (g, e)
