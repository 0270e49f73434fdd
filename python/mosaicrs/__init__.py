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

Errors: :mod:`mosaicrs.exceptions` (``MosaicrsError`` and its subclasses,
each also the built-in a caller would catch, such as ``OSError``).

Training: see :mod:`mosaicrs.torch`. Spark without a jar: see
:mod:`mosaicrs.spark` (``df.write.format("mosaicrs_py")``).
"""

from __future__ import annotations

import os
from typing import Any, List, Mapping, Optional, Sequence, Tuple, Union

from . import _native, exceptions
from ._native import ColumnLayout, Dataset, PartitionWriter, WriteResult
from .exceptions import *  # noqa: F401,F403 (the classes, listed in exceptions.__all__)
from .mix import Stream

__all__ = [
    "ColumnLayout",
    "Dataset",
    "PartitionWriter",
    "Stream",
    "WriteResult",
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
    )


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
