package org.apache.spark.sql.mosaicrs

import org.apache.arrow.vector.VectorSchemaRoot
import org.apache.arrow.vector.types.pojo.Schema

import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.execution.arrow.ArrowWriter
import org.apache.spark.sql.types.StructType
import org.apache.spark.sql.util.ArrowUtils

/**
 * The connector's only use of Spark internals (`private[sql]` APIs), kept in
 * one small place so that a Spark upgrade that moves them breaks one file.
 *
 * Both are what Spark itself uses to turn rows into Arrow (for `toPandas` and
 * Arrow UDFs), so the connector maps types exactly as Spark does:
 *
 *  - `ArrowUtils.toArrowSchema`: Spark type to Arrow type;
 *  - `ArrowWriter`: copies the values of each `InternalRow` into Arrow
 *    vectors. It copies, so Spark may reuse the row object afterwards.
 */
object SparkInternals {

  /**
   * Timestamps are stored as UTC microseconds with time zone "UTC", whatever
   * the session time zone, so that the dataset's schema does not depend on
   * the session that wrote it (appends from other sessions must match).
   */
  val TimestampZone: String = "UTC"

  /** The Arrow schema Spark's own Arrow conversion gives `schema`. */
  def toArrowSchema(schema: StructType): Schema =
    ArrowUtils.toArrowSchema(
      schema,
      TimestampZone,
      errorOnDuplicatedFieldNames = true,
      largeVarTypes = false)

  /** A writer that appends rows to the vectors of `root`. */
  def rowWriter(root: VectorSchemaRoot): RowsToArrow = new RowsToArrow {
    private val writer = ArrowWriter.create(root)
    override def write(row: InternalRow): Unit = writer.write(row)
    override def finish(): Unit = writer.finish()
    override def reset(): Unit = writer.reset()
    override def sizeInBytes: Long = writer.sizeInBytes().toLong
  }
}

/** Appends Spark rows to Arrow vectors; see [[SparkInternals.rowWriter]]. */
trait RowsToArrow {

  /** Copies the values of `row` into the vectors. */
  def write(row: InternalRow): Unit

  /** Sets the row count of the vectors, making the batch complete. */
  def finish(): Unit

  /** Empties the vectors for the next batch, keeping their memory. */
  def reset(): Unit

  /** Bytes currently held by the vectors' buffers. */
  def sizeInBytes: Long
}
