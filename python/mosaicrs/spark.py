"""A jar-free Spark writer: Spark 4's Python data source API.

::

    from mosaicrs.spark import register
    register(spark)                                     # once per session
    df.write.format("mosaicrs_py").mode("overwrite").save("/data/train")

It runs through the same Rust shard writer and commit as the JVM connector
(``df.write.format("mosaicrs")``), so it works over Spark Connect and on
clusters that allow no jars. Each task attempt writes shards named after the
write id, its partition and its task attempt id (an Arrow writer: Spark hands
it Arrow record batches); only the driver's ``commit`` publishes the shards
of the attempts that Spark committed, in one atomic index write, and removes
everything else the write left. A failed job's ``abort`` removes all of it.

Options, as for the JVM connector: ``shardSize`` (``64m``), ``compression``
(``none``, ``zstd``, ``lz4``), ``batchRows`` (rows per record batch in the
shards), ``pack.<name>`` (numeric columns stored row-major as one
fixed-size-list column ``<name>``) and ``fixedLength.<column>`` (a list column
whose rows all hold that many values, stored as a fixed-size list). Save modes: Spark tells a Python data source only whether to overwrite,
so ``.mode("overwrite")`` overwrites and every other write appends (into a
new or an existing dataset), unless ``.option("saveMode", "error")`` or
``"ignore"`` asks for the JVM connector's other modes; both are decided on
the driver before any task runs, by the commit's own rules in Rust.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional

import pyarrow as pa
from pyspark.sql.datasource import DataSource, DataSourceArrowWriter, WriterCommitMessage
from pyspark.sql.types import StructType

from . import _native

FORMAT = "mosaicrs_py"
# The data source's own options; every other one is a writer option, which
# the native library parses (as it does the JVM connector's).
_OWN_OPTIONS = ("path", "savemode")


def register(spark: Any) -> None:
    """Registers the ``mosaicrs_py`` format with ``spark`` (a SparkSession)."""
    spark.dataSource.register(MosaicrsDataSource)


def _arrow_schema(schema: StructType) -> pa.Schema:
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(schema)


@dataclass
class ShardsMessage(WriterCommitMessage):
    """What a task attempt wrote (JSON shard entries), sent to the driver."""

    shards: str
    partition: int
    attempt: int
    rows: int


class MosaicrsDataSource(DataSource):
    """``df.write.format("mosaicrs_py")``: see the module docs."""

    @classmethod
    def name(cls) -> str:
        return FORMAT

    def writer(self, schema: StructType, overwrite: bool) -> "MosaicrsArrowWriter":
        return MosaicrsArrowWriter(dict(self.options), schema, overwrite)


class MosaicrsArrowWriter(DataSourceArrowWriter):
    """Created on the driver (options checked there, before any task), pickled
    to the executors for ``write``; ``commit`` / ``abort`` run on the driver."""

    def __init__(self, options: Dict[str, str], schema: StructType, overwrite: bool) -> None:
        lower = {k.lower(): v for k, v in options.items() if k.lower() in _OWN_OPTIONS}
        # Layout keys keep their case after the prefix: it names columns.
        self.options = [(k, v) for k, v in options.items() if k.lower() not in _OWN_OPTIONS]
        path = lower.get("path")
        if not path:
            raise ValueError("mosaicrs_py needs a path: df.write.format('mosaicrs_py').save(path)")
        if path.startswith("file:"):
            path = path[len("file:"):]
            while path.startswith("//"):
                path = path[1:]
        if "://" in path:
            raise ValueError(
                f"path {path!r} is a URL; this build of mosaicrs writes local paths only"
            )
        self.path = os.path.abspath(path)
        # Every writer option checked by the native parser (ValueError naming
        # a bad one); the rows per batch a task writes: batchRows, or the
        # Spark writers' default for the compression.
        self.batch_rows = _native.spark_batch_rows(self.options, FORMAT)
        requested = lower.get("savemode")
        if overwrite:
            if requested is not None and requested.lower() != "overwrite":
                raise ValueError(f"saveMode {requested!r} contradicts .mode('overwrite')")
            self.mode = "overwrite"
        else:
            self.mode = (requested or "append").lower()
        self.schema = _arrow_schema(schema)
        # What the shards store; a layout naming a bad column fails here.
        self.stored_schema = _native.stored_schema(self.schema, self.options)
        # The commit's own rules, before any task runs: a bad mode raises
        # ValueError, error over a dataset FileExistsError, an append of
        # another schema ValueError.
        exists = _native.check_save_mode(self.path, self.stored_schema, self.mode)
        # ignore with an existing dataset: the tasks write nothing, the commit keeps it.
        self.skip = self.mode == "ignore" and exists
        self.write_id = _native.write_id()

    def _conform(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if batch.schema.equals(self.schema):
            return batch
        try:
            return pa.RecordBatch.from_arrays(batch.columns, schema=self.schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError):
            return batch.cast(self.schema)

    def write(self, iterator: Iterator[pa.RecordBatch]) -> ShardsMessage:
        from pyspark import TaskContext

        ctx = TaskContext.get()
        if self.skip:
            for _ in iterator:
                pass
            return ShardsMessage("[]", ctx.partitionId() if ctx else 0, 0, 0)
        partition = ctx.partitionId() if ctx is not None else 0
        attempt = ctx.taskAttemptId() if ctx is not None else 0
        writer = _native.PartitionWriter(
            self.path, self.schema, self.write_id, partition, attempt,
            batch_rows=self.batch_rows, options=self.options,
        )
        try:
            for batch in iterator:
                writer.write(self._conform(batch))
            rows = writer.rows_written()
            shards = writer.finish()
        except BaseException:
            writer.abort()
            raise
        return ShardsMessage(shards, partition, attempt, rows)

    def commit(self, messages: List[Optional[WriterCommitMessage]]) -> None:
        if self.skip:
            return
        shards = [m.shards for m in messages if isinstance(m, ShardsMessage)]
        _native.commit(self.path, self.stored_schema, self.write_id, shards, self.mode)

    def abort(self, messages: List[Optional[WriterCommitMessage]]) -> None:
        _native.abort_write(self.path, self.write_id)
