"""mosaicrs: Arrow IPC datasets written by Spark, streamed into training loops.

Reading::

    import mosaicrs, pyarrow as pa
    ds = mosaicrs.Dataset("train.mosaicrs")
    table = pa.table(ds)            # zero-copy through the Arrow PyCapsule interface
    rows = ds.take([0, 5, 9])       # a pyarrow.Table

Writing (no Spark, no jar)::

    mosaicrs.write(table, "train.mosaicrs", mode="overwrite")

Object stores: every path may be a URL (``s3://``, ``gs://``, ``az://``,
read-only ``https://``) with ``storage_options``; remote shards are read
through a local cache (``cache_dir`` / ``cache_limit``, else
``MOSAICRS_CACHE_DIR`` / ``MOSAICRS_CACHE_LIMIT``): downloaded whole and
mapped when the dataset fits in it, else streamed through it
(``ds.is_streamed``)::

    ds = mosaicrs.Dataset("s3://bucket/train", {"aws_region": "eu-west-1"})

Versions: every commit is kept until ``vacuum`` removes it; read one with
``mosaicrs.Dataset(path, version=3)`` or ``as_of=datetime(...)``, list them
with :func:`log`, and record what a write was with ``metadata=``::

    mosaicrs.write(table, "train.mosaicrs", mode="append", metadata={"run": "nightly"})
    [v.version for v in mosaicrs.log("train.mosaicrs")]   # newest first

Errors: :mod:`mosaicrs.exceptions` (``MosaicrsError`` and its subclasses,
each also the built-in a caller would catch, such as ``OSError``).

Training: see :mod:`mosaicrs.torch`. Spark without a jar: see
:mod:`mosaicrs.spark` (``df.write.format("mosaicrs_py")``).
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from . import _native, exceptions
from ._native import ColumnLayout, Dataset, PartitionWriter, WriteResult
from .exceptions import *  # noqa: F401,F403 (the classes, listed in exceptions.__all__)
from .mix import Stream

__all__ = [
    "ColumnLayout",
    "Dataset",
    "PartitionWriter",
    "Stream",
    "Version",
    "WriteResult",
    "log",
    "write",
    "exceptions",
    *exceptions.__all__,
    "__version__",
]
__version__: str = _native.__version__

_MODES = ("error", "errorifexists", "default", "append", "overwrite", "ignore")


def _as_arrow_stream(data: Any) -> Any:
    """Anything tabular as an object with ``__arrow_c_stream__``."""
    if hasattr(data, "__arrow_c_stream__"):
        return data
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is optional
        pd = None
    import pyarrow as pa

    if pd is not None and isinstance(data, pd.DataFrame):
        return pa.Table.from_pandas(data, preserve_index=False)
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if hasattr(data, "to_arrow"):  # Polars objects without the capsule interface
        return data.to_arrow()
    if isinstance(data, (list, tuple)) and data and isinstance(data[0], pa.RecordBatch):
        return pa.Table.from_batches(list(data))
    raise TypeError(
        f"mosaicrs.write: cannot write a {type(data).__name__}; pass a pyarrow Table, "
        "RecordBatch or RecordBatchReader, a Polars or pandas DataFrame, or any object "
        "with __arrow_c_stream__"
    )


def write(
    data: Any,
    path: Union[str, "os.PathLike[str]"],
    mode: str = "error",
    *,
    shard_size: Optional[Union[int, str]] = None,
    batch_rows: Optional[int] = None,
    compression: Optional[str] = None,
    storage_options: Optional[Mapping[str, str]] = None,
    pack: Optional[Mapping[str, Sequence[str]]] = None,
    fixed_lengths: Optional[Mapping[str, int]] = None,
    layout: Optional[ColumnLayout] = None,
    merge_schema: bool = False,
    metadata: Optional[Mapping[str, str]] = None,
) -> WriteResult:
    """Writes ``data`` as a mosaicrs dataset at ``path`` and commits it atomically.

    ``data`` is a pyarrow Table / RecordBatch / RecordBatchReader, a Polars or
    pandas DataFrame, or anything with ``__arrow_c_stream__`` (streamed, not
    collected). ``mode`` is Spark's save mode: ``error`` (default: fail if a
    dataset exists), ``append``, ``overwrite`` or ``ignore``. ``shard_size``
    (bytes or ``"64m"``), ``batch_rows`` and ``compression`` (``none``,
    ``zstd``, ``lz4``) are the JVM connector's options. ``path`` may be an
    object-store URL (``s3://bucket/prefix``, ``gs://``, ``az://``); then
    ``storage_options`` (``object_store`` names such as ``aws_endpoint``,
    ``aws_region``, ``aws_access_key_id``) override the environment's
    ``AWS_*`` / ``GOOGLE_*`` / ``AZURE_*`` settings. The commit is a
    conditional write of the index, so concurrent writers never lose one.

    ``pack={"features": ["x0", "x1", ...]}`` stores those numeric columns
    row-major as one fixed-size-list column ``features`` (their names kept in
    its field metadata): each sample's values side by side, which makes
    ``[B, F]`` batches read at random faster (docs/FORMAT.md, "Packed
    columns"). ``fixed_lengths={"emb": 128}`` stores a list column whose rows
    all hold 128 values as a fixed-size list; a row of another length raises
    ValueError naming the column and row. ``layout=ColumnLayout(pack=...,
    fixed_lengths=...)`` is the same, as one checked value (not together with
    ``pack`` or ``fixed_lengths``).

    ``merge_schema=True`` (Spark's ``mergeSchema`` option) lets an ``append``
    add nullable columns after the dataset's: the rows written before read
    them as nulls. Any other schema difference, or an added column without
    it, raises ValueError naming the column.

    ``metadata={"run": "nightly"}`` (str keys and values) is recorded with the
    commit, next to the writer (``{"engine": "python", ...}``); :func:`log`
    and ``mosaicrs log`` show both.

    Returns a :class:`WriteResult`: ``committed`` (false when ``ignore`` kept
    a dataset), the ``rows``, ``shards`` and ``bytes`` written,
    ``total_rows`` (the dataset's rows after the commit), ``removed`` (files
    the commit deleted) and ``write_id``; also readable as
    ``result["total_rows"]``.

    >>> import pyarrow as pa, mosaicrs, tempfile, os
    >>> d = os.path.join(tempfile.mkdtemp(), "t")
    >>> result = mosaicrs.write(pa.table({"x": [1.0, 2.0]}), d)
    >>> result.rows, result.shards, result.total_rows
    (2, 1, 2)
    """
    if not isinstance(mode, str) or mode.lower() not in _MODES:
        raise InvalidInputError(f"mode {mode!r} is not one of error, append, overwrite, ignore")
    if layout is None:
        layout = ColumnLayout(pack, fixed_lengths)
    elif pack is not None or fixed_lengths is not None:
        raise InvalidInputError("pass either layout= or pack= / fixed_lengths=, not both")
    if metadata is not None:
        if not isinstance(metadata, Mapping) or not all(
            isinstance(k, str) and k and isinstance(v, str) for k, v in metadata.items()
        ):
            raise InvalidInputError(f"metadata= must map non-empty str keys to str values, got {metadata!r}")
        metadata = dict(metadata)
    return _native.write_stream(
        _as_arrow_stream(data),
        path,
        mode,
        shard_size,
        batch_rows,
        compression,
        storage_options,
        layout,
        merge_schema,
        metadata,
    )


@dataclass(frozen=True)
class Version:
    """One committed version of a dataset, as :func:`log` lists it."""

    version: int
    #: When the commit was made (UTC).
    committed_at: datetime.datetime
    #: ``create``, ``append``, ``overwrite`` or ``restore``.
    operation: str
    rows_added: int
    rows_removed: int
    #: Rows, bytes and shards of the dataset at this version.
    total_rows: int
    total_bytes: int
    shards: int
    #: Who wrote it: ``engine`` (``spark``, ``python``, ``cli``) and its identifiers.
    writer: Dict[str, str]
    #: The write's ``metadata=`` / ``.option("metadata.<key>", ...)`` entries.
    metadata: Dict[str, str]
    #: The version a ``restore`` commit copied.
    restored_from: Optional[int]
    #: The columns an append with ``mergeSchema`` added, in words.
    schema_change: Optional[str]
    write_id: str


def log(
    path: Union[str, "os.PathLike[str]"],
    storage_options: Optional[Mapping[str, str]] = None,
) -> List[Version]:
    """The kept versions of the dataset at ``path``, newest first.

    >>> import pyarrow as pa, mosaicrs, tempfile, os
    >>> d = os.path.join(tempfile.mkdtemp(), "t")
    >>> _ = mosaicrs.write(pa.table({"x": [1.0, 2.0]}), d, metadata={"run": "a"})
    >>> _ = mosaicrs.write(pa.table({"x": [3.0]}), d, mode="append")
    >>> [(v.version, v.operation, v.rows_added, v.total_rows) for v in mosaicrs.log(d)]
    [(1, 'append', 1, 3), (0, 'create', 2, 2)]
    >>> mosaicrs.log(d)[-1].metadata
    {'run': 'a'}
    """
    out = []
    for v in _native.log(path, storage_options):
        ms = v.pop("committed_at_ms")
        when = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc)
        out.append(Version(committed_at=when, **v))
    return out


def layout_options(
    pack: Optional[Mapping[str, Sequence[str]]] = None,
    fixed_lengths: Optional[Mapping[str, int]] = None,
) -> List[Tuple[str, str]]:
    """The column layout as writer options (``pack.<name>``, ``fixedLength.<column>``),
    the form the JVM connector's ``.option(...)`` takes: ``ColumnLayout(pack,
    fixed_lengths).options()``.

    >>> layout_options({"features": ["a", "b"]}, {"emb": 4})
    [('pack.features', 'a,b'), ('fixedLength.emb', '4')]
    """
    return ColumnLayout(pack, fixed_lengths).options()
