package io.mosaicrs.spark

import java.util

import scala.jdk.CollectionConverters._

import io.mosaicrs.spark.read.MosaicrsScanBuilder

import org.apache.spark.sql.connector.catalog.{SupportsRead, SupportsWrite, TableCapability}
import org.apache.spark.sql.connector.read.ScanBuilder
import org.apache.spark.sql.connector.write.{LogicalWriteInfo, WriteBuilder}
import org.apache.spark.sql.types.StructType
import org.apache.spark.sql.util.CaseInsensitiveStringMap

/**
 * A mosaicrs dataset folder as a DSv2 table that can be written.
 *
 * It advertises BATCH_WRITE and TRUNCATE only for the connector's own inner
 * write, recognised by [[MosaicrsOptions.SaveModeKey]]. For a user's
 * `df.write.format("mosaicrs").save(path)` it advertises none, which makes
 * Spark's DataFrameWriter hand every save mode to
 * [[MosaicrsDataSource.createRelation]] instead of refusing the default
 * mode (ErrorIfExists) and Ignore, as it does for batch-writable V2 tables.
 *
 * Reads (`spark.read.format("mosaicrs").load(path)`, SQL tables) scan the
 * dataset through [[io.mosaicrs.spark.read.MosaicrsScanBuilder]].
 */
final class MosaicrsTable(tableSchema: StructType, properties: util.Map[String, String])
    extends SupportsWrite
    with SupportsRead {

  private val innerWrite = properties.containsKey(MosaicrsOptions.SaveModeKey)

  override def name(): String = s"mosaicrs:${Option(properties.get("path")).getOrElse("")}"

  override def schema(): StructType = tableSchema

  override def capabilities(): util.Set[TableCapability] =
    if (innerWrite) Set(TableCapability.BATCH_WRITE, TableCapability.TRUNCATE).asJava
    else Set(TableCapability.BATCH_READ).asJava

  override def newScanBuilder(options: CaseInsensitiveStringMap): ScanBuilder =
    new MosaicrsScanBuilder(
      MosaicrsOptions.resolvePath(Option(properties.get("path")).orElse(Option(options.get("path")))),
      tableSchema,
      options)

  override def newWriteBuilder(info: LogicalWriteInfo): WriteBuilder = new MosaicrsWriteBuilder(info)
}
