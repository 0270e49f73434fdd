"""The CLI and the format, end to end: a mixed-type CSV converted by
`mosaicrs convert` reads back identically through `inspect`, `validate`,
`head` and pyarrow; a flipped byte makes `validate` fail naming the file."""

import csv
import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from conftest import run_cli

ROWS = 5000


@pytest.fixture()
def mixed_csv(tmp_path: Path) -> Path:
    """ints, floats, bools, strings (with quotes and commas), dates,
    timestamps, and empty cells (nulls) in every column but the id."""
    rng = random.Random(7)
    path = tmp_path / "mixed.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "count", "score", "flag", "name", "day", "at"])
        for i in range(ROWS):
            blank = lambda k: i % k == k - 1  # noqa: E731
            w.writerow([
                i,
                "" if blank(11) else rng.randint(-10**12, 10**12),
                "" if blank(7) else f"{rng.uniform(-1e6, 1e6):.6f}",
                "" if blank(5) else rng.choice(["true", "false"]),
                "" if blank(13) else f'name "{i}", {rng.random():.3f}',
                "" if blank(17) else f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}",
                "" if blank(19) else f"2024-03-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:05",
            ])
    return path


def read_shards(dataset: Path) -> pa.Table:
    index = json.loads((dataset / "index.json").read_text())
    tables = []
    for shard in index["shards"]:
        with ipc.open_file(dataset / shard["path"]) as reader:
            tables.append(reader.read_all())
    return pa.concat_tables(tables)


def test_convert_csv_roundtrip_through_inspect_validate_and_pyarrow(
        mosaicrs_cli, mixed_csv, tmp_path):
    out = tmp_path / "ds"
    run_cli(mosaicrs_cli, "convert", mixed_csv, out, "--shard-size", "64k",
            "--batch-rows", "700", "--quiet")

    info = json.loads(run_cli(mosaicrs_cli, "inspect", out, "--json").stdout)
    assert info["rows"] == ROWS
    assert info["shards"] > 1, "64k shards should roll several times"
    assert info["compression"] == ["none"]
    assert [f["name"] for f in info["fields"]] == [
        "id", "count", "score", "flag", "name", "day", "at"]
    types = {f["name"]: f["type"] for f in info["fields"]}
    assert types["count"] == "Int64" and types["score"] == "Float64"
    assert types["flag"] == "Boolean" and types["name"] == "Utf8"
    assert types["day"] == "Date32" and types["at"].startswith("Timestamp")

    assert "OK" in run_cli(mosaicrs_cli, "validate", out).stdout

    # Like arrow-rs, read empty cells as nulls for strings too.
    expected = pacsv.read_csv(
        mixed_csv, convert_options=pacsv.ConvertOptions(strings_can_be_null=True))
    actual = read_shards(out)
    assert actual.num_rows == ROWS
    for name in ["id", "count", "score", "flag", "name", "day"]:
        assert actual.column(name).to_pylist() == expected.column(name).to_pylist(), name
    # pyarrow parses the timestamp column to seconds resolution, arrow-rs to
    # nanoseconds: compare the instants.
    assert (actual.column("at").cast(pa.timestamp("s")).to_pylist()
            == expected.column("at").cast(pa.timestamp("s")).to_pylist())
    assert actual.column("name").null_count == expected.column("name").null_count > 0

    head = run_cli(mosaicrs_cli, "head", out, "-n", "3", "--columns", "id,name").stdout
    assert 'name "0",' in head and "(3 of 5000 rows)" in head


def test_validate_names_the_shard_with_a_flipped_byte(mosaicrs_cli, mixed_csv, tmp_path):
    out = tmp_path / "ds"
    run_cli(mosaicrs_cli, "convert", mixed_csv, out, "--shard-size", "64k",
            "--batch-rows", "700", "--quiet")
    index = json.loads((out / "index.json").read_text())
    victim = out / index["shards"][1]["path"]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x40
    victim.write_bytes(bytes(data))

    proc = run_cli(mosaicrs_cli, "validate", out, check=False)
    assert proc.returncode == 1
    assert victim.name in proc.stderr and "checksum mismatch" in proc.stderr
    others = [s["path"] for s in index["shards"] if s["path"] != victim.name]
    assert not any(name in proc.stderr for name in others)


@pytest.mark.parametrize("compression", ["zstd", "lz4"])
def test_compressed_shards_open_in_pyarrow(mosaicrs_cli, mixed_csv, tmp_path, compression):
    out = tmp_path / "ds"
    run_cli(mosaicrs_cli, "convert", mixed_csv, out, "--compression", compression, "--quiet")
    info = json.loads(run_cli(mosaicrs_cli, "inspect", out, "--json").stdout)
    assert info["compression"] == [compression]
    assert read_shards(out).column("score").to_pylist() == \
        pacsv.read_csv(mixed_csv).column("score").to_pylist()


def test_convert_parquet_and_arrow_inputs(mosaicrs_cli, tmp_path):
    table = pa.table({
        "x": pa.array([1, None, 3], pa.int32()),
        "v": pa.array([[1.0, 2.0], None, []], pa.list_(pa.float64())),
        "s": pa.array([{"a": 1}, {"a": None}, None], pa.struct([("a", pa.int64())])),
    })
    pq.write_table(table, tmp_path / "in.parquet")
    with ipc.new_file(tmp_path / "in.arrow", table.schema) as w:
        w.write_table(table)
    for name in ["in.parquet", "in.arrow"]:
        out = tmp_path / f"ds-{name}"
        run_cli(mosaicrs_cli, "convert", tmp_path / name, out, "--quiet")
        assert read_shards(out).to_pylist() == table.to_pylist()


def test_convert_modes_and_bad_options(mosaicrs_cli, mixed_csv, tmp_path):
    out = tmp_path / "ds"
    run_cli(mosaicrs_cli, "convert", mixed_csv, out, "--quiet")
    again = run_cli(mosaicrs_cli, "convert", mixed_csv, out, "--quiet", check=False)
    assert again.returncode != 0 and "already exists" in again.stderr
    run_cli(mosaicrs_cli, "convert", mixed_csv, out, "--mode", "append", "--quiet")
    info = json.loads(run_cli(mosaicrs_cli, "inspect", out, "--json").stdout)
    assert info["rows"] == 2 * ROWS and len(info["writes"]) == 2
    appended_shards = info["shards"]
    run_cli(mosaicrs_cli, "convert", mixed_csv, out, "--mode", "overwrite", "--quiet")
    info = json.loads(run_cli(mosaicrs_cli, "inspect", out, "--json").stdout)
    assert info["rows"] == ROWS
    # The replaced shards stay for the older versions until a vacuum drops them.
    assert len(list(out.glob("*.arrow"))) == appended_shards + info["shards"]

    bad = run_cli(mosaicrs_cli, "convert", mixed_csv, tmp_path / "x", "--compression", "gzip",
                  check=False)
    assert bad.returncode != 0 and "--compression" in bad.stderr and "gzip" in bad.stderr
    bad = run_cli(mosaicrs_cli, "convert", mixed_csv, tmp_path / "x", "--shard-size", "big",
                  check=False)
    assert bad.returncode != 0 and "--shard-size" in bad.stderr
    assert not (tmp_path / "x").exists(), "bad options must fail before any work"

    missing = run_cli(mosaicrs_cli, "inspect", tmp_path / "nothing", check=False)
    assert missing.returncode != 0 and "index.json not found" in missing.stderr


def all_spark_types_table(n: int = 3000) -> pa.Table:
    """Every Arrow type Spark produces, with nulls in each column."""
    import datetime as dt
    import decimal

    def nullify(values, k):
        return [None if i % k == k - 1 else v for i, v in enumerate(values)]

    r = range(n)
    cols = {
        "i8": pa.array(nullify([i % 100 - 50 for i in r], 5), pa.int8()),
        "i16": pa.array(nullify([i * 3 for i in r], 6), pa.int16()),
        "i32": pa.array(nullify([-i * 7 for i in r], 7), pa.int32()),
        "i64": pa.array(nullify([i * 10**9 for i in r], 4), pa.int64()),
        "f32": pa.array(nullify([i * 0.5 for i in r], 5), pa.float32()),
        "f64": pa.array(nullify([i / 7 for i in r], 3), pa.float64()),
        "bool": pa.array(nullify([i % 2 == 0 for i in r], 4), pa.bool_()),
        "utf8": pa.array(nullify([f"s{i}" for i in r], 3), pa.string()),
        "large_utf8": pa.array(nullify(["é" * (i % 4) for i in r], 5), pa.large_string()),
        "binary": pa.array(nullify([bytes([i % 256]) * (i % 5) for i in r], 4), pa.binary()),
        "date": pa.array(nullify([dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in r], 6),
                         pa.date32()),
        "ts": pa.array(nullify([1_700_000_000_000_000 + i for i in r], 5), pa.timestamp("us")),
        "ts_utc": pa.array(nullify([1_600_000_000_000_000 - i for i in r], 7),
                           pa.timestamp("us", tz="UTC")),
        "decimal": pa.array(nullify([decimal.Decimal(i * 12345) / 10**10 for i in r], 4),
                            pa.decimal128(38, 10)),
        "list": pa.array(nullify([[i, None, i + 1][: i % 4] for i in r], 6), pa.list_(pa.int32())),
        "large_list": pa.array(nullify([[f"v{i}"] * (i % 3) for i in r], 6),
                               pa.large_list(pa.string())),
        "fixed_list": pa.array(nullify([[float(i + k) for k in range(4)] for i in r], 8),
                               pa.list_(pa.float32(), 4)),
        "struct": pa.array(nullify([{"a": i, "b": f"b{i}"} for i in r], 5),
                           pa.struct([("a", pa.int32()), ("b", pa.string())])),
        "map": pa.array(nullify([[(f"k{k}", i * k) for k in range(i % 3)] for i in r], 7),
                        pa.map_(pa.string(), pa.int64())),
        "nested": pa.array(nullify([[[i, i + 1], []] for i in r], 9),
                           pa.list_(pa.list_(pa.int64()))),
        "nulls": pa.nulls(n),
    }
    return pa.table(cols)


@pytest.mark.parametrize("compression", ["none", "zstd"])
def test_every_spark_type_reads_back_in_pyarrow(mosaicrs_cli, tmp_path, compression):
    table = all_spark_types_table()
    with ipc.new_file(tmp_path / "in.arrow", table.schema) as w:
        w.write_table(table, max_chunksize=1000)
    out = tmp_path / "ds"
    run_cli(mosaicrs_cli, "convert", tmp_path / "in.arrow", out, "--batch-rows", "512",
            "--shard-size", "32k", "--compression", compression, "--quiet")
    assert "OK" in run_cli(mosaicrs_cli, "validate", out).stdout
    index = json.loads((out / "index.json").read_text())
    assert len(index["shards"]) > 1
    for shard in index["shards"]:
        with ipc.open_file(out / shard["path"]) as reader:
            assert reader.schema.equals(table.schema), shard["path"]
            assert reader.num_record_batches == shard["batches"]
            assert sum(reader.get_batch(i).num_rows
                       for i in range(reader.num_record_batches)) == shard["rows"]
    actual = read_shards(out)
    assert actual.schema.equals(table.schema)
    for name in table.column_names:
        assert actual.column(name).to_pylist() == table.column(name).to_pylist(), name
        assert actual.column(name).null_count == table.column(name).null_count > 0, name
