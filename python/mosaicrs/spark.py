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
shards), ``mergeSchema`` (``true``: an append may add nullable columns),
``pack.<name>`` (numeric columns stored row-major as one
fixed-size-list column ``<name>``) and ``fixedLength.<column>`` (a list column
whose rows all hold that many values, stored as a fixed-size list). Save modes: Spark tells a Python data source only whether to overwrite,
so ``.mode("overwrite")`` overwrites and every other write appends (into a
new or an existing dataset), unless ``.option("saveMode", "error")`` or
``"ignore"`` asks for the JVM connector's other modes; both are decided on
the driver before any task runs, by the commit's own rules in Rust.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional

import pyarrow as pa

try:
    from pyspark.sql.datasource import DataSource, DataSourceArrowWriter, WriterCommitMessage
    from pyspark.sql.types import StructType
except ImportError as _exc:
    # Without pyspark, or with pyspark 3.5 (no Python data source API),
    # jar() still works; register() says what is missing.
    _DATASOURCE_MISSING: Optional[ImportError] = _exc
    DataSource = DataSourceArrowWriter = WriterCommitMessage = object  # type: ignore[misc,assignment]
else:
    _DATASOURCE_MISSING = None

from . import _native
from .exceptions import InvalidInputError

FORMAT = "mosaicrs_py"
# The data source's own options; every other one is a writer option, which
# the native library parses (as it does the JVM connector's).
_OWN_OPTIONS = ("path", "savemode")


# The connector jar in this package for each Spark line (see jar()).
_JARS = {"3.5": "mosaicrs-spark-3.5_2.12.jar", "4": "mosaicrs-spark-4_2.13.jar"}


def jar(spark_version: Optional[str] = None) -> str:
    """The path of the JVM connector jar that this package carries for Spark
    ``spark_version`` (default: the installed ``pyspark``'s version)::

        spark = SparkSession.builder.config("spark.jars", mosaicrs.spark.jar()).getOrCreate()
        df.write.format("mosaicrs").save("/data/train")

    Spark 3.5 gets ``mosaicrs-spark-3.5_2.12.jar`` and Spark 4.x
    ``mosaicrs-spark-4_2.13.jar``; any other version raises ValueError, and
    no ``pyspark`` (with no ``spark_version``) raises ImportError.

    >>> os.path.basename(jar("3.5.1"))
    'mosaicrs-spark-3.5_2.12.jar'
    """
    if spark_version is None:
        try:
            import pyspark
        except ImportError as exc:
            raise ImportError(
                "mosaicrs.spark.jar() picks the connector jar for the installed pyspark, "
                "and pyspark is not installed: install pyspark 3.5 or 4.x, or pass the "
                "cluster's Spark version, e.g. jar('3.5.1')"
            ) from exc
        spark_version = pyspark.__version__
    match = re.match(r"(\d+)\.(\d+)", spark_version)
    major, minor = (int(match.group(1)), int(match.group(2))) if match else (None, None)
    if major == 3 and minor == 5:
        name = _JARS["3.5"]
    elif major == 4:
        name = _JARS["4"]
    else:
        raise InvalidInputError(
            f"Spark {spark_version}: the mosaicrs connector has jars for Spark 3.5 "
            "(Scala 2.12) and Spark 4.x (Scala 2.13) only"
        )
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "jars", name)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{path} is missing: this mosaicrs was built without the connector jars "
            "(the wheel from `make python` or `make dist` carries them)"
        )
    return path


def register(spark: Any) -> None:
    """Registers the ``mosaicrs_py`` format with ``spark`` (a SparkSession)."""
    if _DATASOURCE_MISSING is not None:
        raise ImportError(
            "mosaicrs.spark.register needs Spark 4's Python data source API "
            f"(pyspark.sql.datasource): {_DATASOURCE_MISSING}; with Spark 3.5 use the "
            "connector jar, mosaicrs.spark.jar()"
        ) from _DATASOURCE_MISSING
    spark.dataSource.register(MosaicrsDataSource)


def _spark_writer() -> Dict[str, str]:
    """What a ``mosaicrs_py`` commit records as its writer. The commit runs in
    a Python worker without a SparkSession, so Spark's application id is not
    known here; the pyspark version is."""
    import pyspark

    return {"engine": "spark", "connector": FORMAT, "spark.version": pyspark.__version__}


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
            raise InvalidInputError("mosaicrs_py needs a path: df.write.format('mosaicrs_py').save(path)")
        if path.startswith("file:"):
            path = path[len("file:"):]
            while path.startswith("//"):
                path = path[1:]
        if "://" in path:
            raise InvalidInputError(
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
                raise InvalidInputError(f"saveMode {requested!r} contradicts .mode('overwrite')")
            self.mode = "overwrite"
        else:
            self.mode = (requested or "append").lower()
        self.schema = _arrow_schema(schema)
        # What the shards store; a layout naming a bad column fails here.
        self.stored_schema = _native.stored_schema(self.schema, self.options)
        # The commit's own rules, before any task runs: a bad mode raises
        # ValueError, error over a dataset FileExistsError, an append of
        # another schema ValueError (unless mergeSchema lets it add columns).
        exists = _native.check_save_mode(
            self.path, self.stored_schema, self.mode, options=self.options
        )
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
        _native.commit(
            self.path, self.stored_schema, self.write_id, shards, self.mode,
            options=self.options, writer=_spark_writer(),
        )

    def abort(self, messages: List[Optional[WriterCommitMessage]]) -> None:
        _native.abort_write(self.path, self.write_id)
