package io.mosaicrs.spark

import java.util

import io.mosaicrs.spark.jni.{DatasetLocation, MosaicrsIOException, MosaicrsVersionNotFoundException}
import io.mosaicrs.spark.read.{AggregatePushDown, DatasetSnapshot, MosaicrsScanBuilder, TimeTravel}
import io.mosaicrs.spark.shim.Collections

import org.apache.spark.sql.connector.catalog.{SupportsRead, SupportsWrite, TableCapability}
import org.apache.spark.sql.connector.read.ScanBuilder
import org.apache.spark.sql.connector.write.{LogicalWriteInfo, WriteBuilder}
import org.apache.spark.sql.types.StructType
import org.apache.spark.sql.util.CaseInsensitiveStringMap

/**
 * A mosaicrs dataset folder as a DSv2 table that can be written.
 *
 * Reads (`spark.read.format("mosaicrs").load(path)`, SQL tables) scan the
 * dataset through [[io.mosaicrs.spark.read.MosaicrsScanBuilder]].
 *
 * @param tableSchema the schema Spark knows (a SQL table's), or empty when
 *                    the table stands for a path: then it accepts any schema,
 *                    and an append checks the rows' schema against the
 *                    dataset's before any task runs
 * @param options     the table's options; `path` is the folder
 * @param createOnly  created by Spark's CreateTableAsSelect (save modes
 *                    errorifexists and ignore): the commit fails if a
 *                    dataset appeared since Spark checked
 * @param version     the version a read sees (Spark's time travel:
 *                    `versionAsOf`, `timestampAsOf`); the newest by default
 */
final class MosaicrsTable(
    tableSchema: StructType,
    val options: Map[String, String],
    val createOnly: Boolean,
    val version: TimeTravel = TimeTravel.LATEST)
    extends SupportsWrite
    with SupportsRead {

  override def name(): String =
    s"mosaicrs:${options.collectFirst { case (k, v) if k.equalsIgnoreCase("path") => v }.getOrElse("")}"

  private lazy val location: DatasetLocation = MosaicrsOptions.resolveLocation(options)

  /**
   * The dataset as Spark found it while resolving this table, which the
   * first scan plans from: the driver reads the index once per query. Later
   * scans of the same table (a DataFrame run again) read the index anew, so
   * they see commits made since.
   */
  private var resolved: Option[DatasetSnapshot] = None

  /**
   * A table that stands for a path reports the dataset's schema, so that a
   * read sees its columns; empty while there is no dataset (or it has a
   * column Spark cannot read, which [[newScanBuilder]] then reports).
   */
  private lazy val knownSchema: StructType =
    if (tableSchema.nonEmpty) tableSchema
    else {
      try {
        val snapshot =
          DatasetSnapshot.describe(location, MosaicrsScanBuilder.DEFAULT_PARTITION_BYTES, version)
        synchronized { resolved = Some(snapshot) }
        snapshot.schema()
      } catch {
        // A version that is not kept fails the read here, naming it.
        case e: MosaicrsVersionNotFoundException => throw e
        case _: MosaicrsIOException | _: IllegalArgumentException => tableSchema
      }
    }

  override def schema(): StructType = knownSchema

  override def newScanBuilder(options: CaseInsensitiveStringMap): ScanBuilder = {
    val readLocation =
      MosaicrsOptions.resolveLocation(this.options ++ Collections.toScala(options.asCaseSensitiveMap))
    val schema = knownSchema
    val first = synchronized { try resolved.orNull finally resolved = None }
    new AggregatePushDown(new MosaicrsScanBuilder(readLocation, schema, options, first, version))
  }

  /** The table's options without storage options, whose values may be secrets. */
  override def properties(): util.Map[String, String] =
    Collections.toJava(options.filter { case (k, _) => !MosaicrsOptions.isStorageKey(k) })

  override def capabilities(): util.Set[TableCapability] = {
    val write = Set(TableCapability.BATCH_READ, TableCapability.BATCH_WRITE, TableCapability.TRUNCATE)
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

  /** The table of `version` of the dataset folder `path`, for a read. */
  def forPath(path: String, version: TimeTravel): MosaicrsTable =
    new MosaicrsTable(new StructType(), Map("path" -> path), createOnly = false, version)
}
