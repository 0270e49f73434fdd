package io.mosaicrs.spark

import java.util
import java.util.Optional

import io.mosaicrs.spark.jni.{MosaicrsInvalidInputException, SparkLineCheck}
import io.mosaicrs.spark.shim.{Collections, SessionCatalogShim}
import io.mosaicrs.spark.read.{DatasetSnapshot, MosaicrsScanBuilder}

import org.apache.spark.sql.connector.catalog.{Identifier, SupportsCatalogOptions, Table}
import org.apache.spark.sql.connector.expressions.Transform
import org.apache.spark.sql.sources.DataSourceRegister
import org.apache.spark.sql.types.StructType
import org.apache.spark.sql.util.CaseInsensitiveStringMap

/**
 * The `mosaicrs` Spark data source: `df.write.format("mosaicrs").save(path)`.
 *
 * A save takes Spark's own DSv2 path, which a reader can follow from
 * `save()` to the commit: through `SupportsCatalogOptions` the path names a
 * table of [[MosaicrsCatalog]], and Spark runs AppendData (append),
 * OverwriteByExpression (overwrite) or CreateTableAsSelect (errorifexists,
 * ignore) on it. Every one builds its write with [[MosaicrsWriteBuilder]];
 * tasks write shards through [[MosaicrsDataWriter]], and the driver commits
 * in [[MosaicrsBatchWrite]], applying the mode atomically.
 *
 * SQL tables (`CREATE TABLE t USING mosaicrs LOCATION '...'`) reach
 * [[getTable]] from Spark's session catalog; `INSERT INTO` and
 * `INSERT OVERWRITE` write through the same builder and commit. (Spark 3.5's
 * session catalog reaches them through the V1 relation of
 * [[io.mosaicrs.spark.shim.SessionCatalogShim]], which runs the same scan and save.)
 */
final class MosaicrsDataSource
    extends SupportsCatalogOptions
    with DataSourceRegister
    with SessionCatalogShim {

  override def shortName(): String = MosaicrsDataSource.ShortName

  override def toString: String = MosaicrsDataSource.ShortName

  /**
   * Spark passes the table's (or DataFrame's) schema to [[getTable]]; a SQL
   * table created without columns gets the dataset's, from [[inferSchema]].
   */
  override def supportsExternalMetadata(): Boolean = true

  /** The dataset's schema, from its index; fails naming the path when there is none. */
  override def inferSchema(options: CaseInsensitiveStringMap): StructType = {
    SparkLineCheck.verify()
    val location = MosaicrsOptions.resolveLocation(Collections.toScala(options.asCaseSensitiveMap))
    DatasetSnapshot.describe(location, MosaicrsScanBuilder.DEFAULT_PARTITION_BYTES).schema()
  }

  override def getTable(
      schema: StructType,
      partitioning: Array[Transform],
      properties: util.Map[String, String]): Table = {
    SparkLineCheck.verify()
    MosaicrsDataSource.refusePartitioning(partitioning)
    new MosaicrsTable(schema, Collections.toScala(properties), createOnly = false)
  }

  override def extractIdentifier(options: CaseInsensitiveStringMap): Identifier = {
    SparkLineCheck.verify()
    // The identifier is the URL alone; the storage options stay on the driver.
    MosaicrsCatalog.identifier(
      MosaicrsOptions.remember(Collections.toScala(options.asCaseSensitiveMap)))
  }

  override def extractCatalog(options: CaseInsensitiveStringMap): String = MosaicrsCatalog.register()

  /** `versionAsOf`: Spark loads the table at it ([[MosaicrsCatalog]]'s `loadTable`). */
  override def extractTimeTravelVersion(options: CaseInsensitiveStringMap): Optional[String] =
    Optional.ofNullable(options.get(MosaicrsScanBuilder.VERSION_AS_OF))

  /** `timestampAsOf`, evaluated by Spark in the session's time zone. */
  override def extractTimeTravelTimestamp(options: CaseInsensitiveStringMap): Optional[String] =
    Optional.ofNullable(options.get(MosaicrsScanBuilder.TIMESTAMP_AS_OF))
}

object MosaicrsDataSource {

  /** The name users pass to `format(...)`. */
  val ShortName = "mosaicrs"

  def refusePartitioning(partitioning: Array[Transform]): Unit =
    if (partitioning.nonEmpty) {
      throw new MosaicrsInvalidInputException(
        "mosaicrs does not support partitionBy: a dataset is one folder of shards listed in " +
          "one index; write each part to its own path instead")
    }
}
