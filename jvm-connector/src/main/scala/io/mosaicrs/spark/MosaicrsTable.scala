package io.mosaicrs.spark

import java.util

import io.mosaicrs.spark.shim.Collections

import org.apache.spark.sql.connector.catalog.{SupportsWrite, TableCapability}
import org.apache.spark.sql.connector.write.{LogicalWriteInfo, WriteBuilder}
import org.apache.spark.sql.types.StructType

/**
 * A mosaicrs dataset folder as a DSv2 table that can be written.
 *
 * @param tableSchema the schema Spark knows (a SQL table's), or empty when
 *                    the table stands for a path: then it accepts any schema,
 *                    and an append checks the rows' schema against the
 *                    dataset's before any task runs
 * @param options     the table's options; `path` is the folder
 * @param createOnly  created by Spark's CreateTableAsSelect (save modes
 *                    errorifexists and ignore): the commit fails if a
 *                    dataset appeared since Spark checked
 */
final class MosaicrsTable(
    tableSchema: StructType,
    val options: Map[String, String],
    val createOnly: Boolean)
    extends SupportsWrite {

  override def name(): String =
    s"mosaicrs:${options.collectFirst { case (k, v) if k.equalsIgnoreCase("path") => v }.getOrElse("")}"

  override def schema(): StructType = tableSchema

  override def properties(): util.Map[String, String] = Collections.toJava(options)

  override def capabilities(): util.Set[TableCapability] = {
    val write = Set(TableCapability.BATCH_WRITE, TableCapability.TRUNCATE)
    Collections.toJava(
      if (tableSchema.isEmpty) write + TableCapability.ACCEPT_ANY_SCHEMA else write)
  }

  override def newWriteBuilder(info: LogicalWriteInfo): WriteBuilder =
    new MosaicrsWriteBuilder(info, this)
}

object MosaicrsTable {

  /** The table of the dataset folder `path`, as the path catalog sees it. */
  def forPath(path: String, createOnly: Boolean): MosaicrsTable =
    new MosaicrsTable(new StructType(), Map("path" -> path), createOnly)
}
