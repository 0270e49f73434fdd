package io.mosaicrs.spark

import java.util

import scala.jdk.CollectionConverters._

import org.apache.spark.sql.connector.catalog.{SupportsWrite, TableCapability}
import org.apache.spark.sql.connector.write.{LogicalWriteInfo, WriteBuilder}
import org.apache.spark.sql.types.StructType

/**
 * A mosaicrs dataset folder as a DSv2 table that can be written.
 *
 * It advertises BATCH_WRITE and TRUNCATE only for the connector's own inner
 * write, recognised by [[MosaicrsOptions.SaveModeKey]]. For a user's
 * `df.write.format("mosaicrs").save(path)` it advertises none, which makes
 * Spark's DataFrameWriter hand every save mode to
 * [[MosaicrsDataSource.createRelation]] instead of refusing the default
 * mode (ErrorIfExists) and Ignore, as it does for batch-writable V2 tables.
 */
final class MosaicrsTable(tableSchema: StructType, properties: util.Map[String, String])
    extends SupportsWrite {

  private val innerWrite = properties.containsKey(MosaicrsOptions.SaveModeKey)

  override def name(): String = s"mosaicrs:${Option(properties.get("path")).getOrElse("")}"

  override def schema(): StructType = tableSchema

  override def capabilities(): util.Set[TableCapability] =
    if (innerWrite) Set(TableCapability.BATCH_WRITE, TableCapability.TRUNCATE).asJava
    else Set.empty[TableCapability].asJava

  override def newWriteBuilder(info: LogicalWriteInfo): WriteBuilder = new MosaicrsWriteBuilder(info)
}
