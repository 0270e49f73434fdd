"""The columns that training data is made of, through both Spark writers (the
JVM connector, format("mosaicrs"), and the Python data source,
format("mosaicrs_py")): `array<int>` token ids from a pandas UDF that runs a
tokenizer, `binary` file contents from Spark's `binaryFile` source, and
`array<array<float>>`. Each is read back by mosaicrs.Dataset (into pyarrow)
and compared with values computed without Spark; `fixedLength.<column>` turns
a token column of one length into a fixed-size list."""

from pathlib import Path
from typing import List, Optional

import numpy as np
import pyarrow as pa
import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from .conftest import SPARK_4, stray_files

# The per-release Spark venvs have neither the wheel nor pandas.
mosaicrs = pytest.importorskip("mosaicrs", reason="run `make python` to install the wheel")
pd = pytest.importorskip("pandas")

BOS, EOS = 256, 257  # the byte-level tokenizer's specials after the 256 byte values
WINDOW = 12  # tokens per row of the fixed-length column

WRITERS = [
    "mosaicrs",
    pytest.param("mosaicrs_py", marks=pytest.mark.skipif(
        not SPARK_4, reason="Python data sources need Spark 4")),
]


def encode(text: Optional[str]) -> Optional[List[int]]:
    """The byte-level tokenizer: BOS, the UTF-8 bytes, EOS."""
    if text is None:
        return None
    return [BOS, *text.encode("utf-8"), EOS]


def window(text: Optional[str]) -> List[int]:
    """The first WINDOW tokens of `encode(text)`, padded with EOS."""
    tokens = (encode(text) or [])[:WINDOW]
    return tokens + [EOS] * (WINDOW - len(tokens))


@F.pandas_udf(T.ArrayType(T.IntegerType()))
def tokenize(texts: pd.Series) -> pd.Series:
    # numpy per document, as a real tokenizer hands back; a null text (None
    # or NaN in pandas) stays a null list.
    def one(text: Optional[str]) -> Optional[np.ndarray]:
        if not isinstance(text, str):
            return None
        body = np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int32)
        return np.concatenate([[BOS], body, [EOS]]).astype(np.int32)

    return texts.map(one)


@F.pandas_udf(T.ArrayType(T.IntegerType()))
def tokenize_window(texts: pd.Series) -> pd.Series:
    # Self-contained: Spark ships the UDF to its Python workers by value.
    def one(text: Optional[str]) -> np.ndarray:
        body = list(text.encode("utf-8")) if isinstance(text, str) else []
        tokens = ([BOS, *body, EOS] if isinstance(text, str) else [])[:WINDOW]
        return np.asarray(tokens + [EOS] * (WINDOW - len(tokens)), dtype=np.int32)

    return texts.map(one)


def texts() -> List[Optional[str]]:
    """Documents of every length from 0 to a few hundred bytes, multi-byte
    characters included, and one null."""
    words = ["spark", "tokens", "Grüße", "naïve", "日本語", "emoji 🚀", "a", "the"]
    out: List[Optional[str]] = []
    for i in range(300):
        out.append(" ".join(words[(i * 7 + k) % len(words)] for k in range(i % 41)))
    out[17] = None
    return out


def writer(spark, fmt: str):
    if fmt == "mosaicrs_py":
        from mosaicrs.spark import register

        register(spark)
    return fmt


def read(path: Path) -> pa.Table:
    ds = mosaicrs.Dataset(str(path))
    ds.verify()
    return pa.table(ds)


@pytest.fixture(scope="module")
def corpus(spark):
    rows = list(enumerate(texts()))
    return spark.createDataFrame(rows, "id long, text string").repartition(3)


@pytest.mark.parametrize("fmt", WRITERS)
def test_token_ids_from_a_pandas_udf_round_trip(spark, corpus, tmp_path, fmt):
    out = tmp_path / "tokens"
    corpus.select("id", tokenize("text").alias("input_ids")) \
        .write.format(writer(spark, fmt)).mode("overwrite").option("batchRows", "64") \
        .save(str(out))

    table = read(out).sort_by("id")
    tokens = table.schema.field("input_ids").type
    assert pa.types.is_list(tokens) and tokens.value_type == pa.int32(), tokens
    assert table.column("id").to_pylist() == list(range(300))
    assert table.column("input_ids").to_pylist() == [encode(t) for t in texts()]
    assert stray_files(out) == []


@pytest.mark.parametrize("fmt", WRITERS)
def test_fixed_length_turns_a_token_window_into_a_fixed_size_list(spark, corpus, tmp_path, fmt):
    out = tmp_path / "windows"
    corpus.select("id", tokenize_window("text").alias("input_ids")) \
        .write.format(writer(spark, fmt)).mode("overwrite") \
        .option("fixedLength.input_ids", str(WINDOW)).save(str(out))

    table = read(out).sort_by("id")
    tokens = table.schema.field("input_ids").type
    assert pa.types.is_fixed_size_list(tokens), tokens
    assert tokens.list_size == WINDOW and tokens.value_type == pa.int32()
    assert table.column("input_ids").to_pylist() == [window(t) for t in texts()]


@pytest.mark.parametrize("fmt", WRITERS)
def test_binary_file_contents_round_trip(spark, tmp_path, fmt):
    files = tmp_path / "files"
    files.mkdir()
    rng = np.random.default_rng(7)
    # A one-byte file, NUL bytes, and files larger than a batch (Spark's file
    # sources list no empty files).
    contents = {
        "one.bin": b"\x00",
        "zeros.bin": bytes(1000),
        "text.bin": "Grüße 🚀\n".encode("utf-8") * 50,
        **{f"random-{k}.bin": rng.integers(0, 256, size=int(size), dtype=np.uint8).tobytes()
           for k, size in enumerate([3, 255, 4096, 150_000])},
    }
    for name, data in contents.items():
        (files / name).write_bytes(data)

    df = spark.read.format("binaryFile").load(str(files))
    out = tmp_path / "binary"
    df.write.format(writer(spark, fmt)).mode("overwrite").option("batchRows", "3").save(str(out))

    table = read(out)
    assert table.schema.field("content").type == pa.binary()
    assert table.schema.field("length").type == pa.int64()
    back = {Path(p).name: (c, n) for p, c, n in zip(table.column("path").to_pylist(),
                                                       table.column("content").to_pylist(),
                                                       table.column("length").to_pylist())}
    assert back == {name: (data, len(data)) for name, data in contents.items()}


def nested_row(i: int):
    """Row i: lists of float32-exact values, with an empty outer list, an
    empty inner list, a null inner list, a null element and a null row."""
    if i % 11 == 10:
        return (i, None)
    if i % 7 == 6:
        return (i, [])
    inner = []
    for j in range(i % 4 + 1):
        if (i + j) % 9 == 8:
            inner.append(None)
        elif (i + j) % 5 == 4:
            inner.append([])
        else:
            inner.append([(i * 8 + j + k) / 8 - 3 for k in range(j + 1)]
                         + ([None] if (i + j) % 13 == 12 else []))
    return (i, inner)


@pytest.mark.parametrize("fmt", WRITERS)
def test_nested_float_lists_round_trip(spark, tmp_path, fmt):
    rows = [nested_row(i) for i in range(400)]
    schema = T.StructType([
        T.StructField("id", T.LongType(), False),
        T.StructField("frames", T.ArrayType(T.ArrayType(T.FloatType()))),
    ])
    df = spark.createDataFrame(rows, schema).repartition(2)
    out = tmp_path / "nested"
    df.write.format(writer(spark, fmt)).mode("overwrite").option("batchRows", "50").save(str(out))

    table = read(out).sort_by("id")
    frames = table.schema.field("frames").type
    assert pa.types.is_list(frames) and pa.types.is_list(frames.value_type), frames
    assert frames.value_type.value_type == pa.float32()
    assert table.column("frames").to_pylist() == [r[1] for r in rows]
