package io.mosaicrs.spark

import java.util

import io.mosaicrs.spark.jni.{MosaicrsInvalidInputException, NativeBridge, SparkLineCheck}
import io.mosaicrs.spark.read.TimeTravel
import io.mosaicrs.spark.shim.CatalogShim

import org.apache.spark.sql.SparkSession
import org.apache.spark.sql.connector.catalog.{Identifier, Table, TableChange}
import org.apache.spark.sql.connector.expressions.Transform
import org.apache.spark.sql.types.StructType
import org.apache.spark.sql.util.CaseInsensitiveStringMap

/**
 * The catalog behind `df.write.format("mosaicrs").save(path)`: a table is a
 * dataset folder, named by its path. [[MosaicrsDataSource]] points Spark at
 * it through `SupportsCatalogOptions`, so every save mode takes Spark's own
 * V2 path:
 *
 *  - append: `loadTable`, then Spark's AppendData;
 *  - overwrite: `loadTable`, then OverwriteByExpression(true), which
 *    truncates through [[MosaicrsWriteBuilder]] (`SupportsTruncate`);
 *  - errorifexists / ignore: Spark's CreateTableAsSelect: `tableExists`
 *    (true when the folder holds an index); if it exists, ignore returns and
 *    errorifexists fails, both before any job; otherwise `createTable`
 *    returns a table whose write commits in mode errorifexists, so a dataset
 *    created meanwhile still makes the commit fail.
 *
 * It keeps no state and never deletes a dataset (`dropTable` is false).
 */
final class MosaicrsCatalog extends CatalogShim {
  private var catalogName = MosaicrsCatalog.Name

  override def initialize(name: String, options: CaseInsensitiveStringMap): Unit = {
    SparkLineCheck.verify()
    catalogName = name
  }

  override def name(): String = catalogName

  override def loadTable(ident: Identifier): Table =
    MosaicrsTable.forPath(MosaicrsCatalog.path(ident), createOnly = false)

  /** Spark's time travel by version (`versionAsOf`, SQL `VERSION AS OF`). */
  override def loadTable(ident: Identifier, version: String): Table = {
    val number =
      try version.trim.toLong
      catch {
        case _: NumberFormatException =>
          throw new MosaicrsInvalidInputException(
            s"versionAsOf '$version' is not a version number (see `mosaicrs log`)")
      }
    MosaicrsTable.forPath(MosaicrsCatalog.path(ident), TimeTravel.ofVersion(number))
  }

  /**
   * Spark's time travel by time (`timestampAsOf`, SQL `TIMESTAMP AS OF`):
   * `timestamp` is microseconds since the epoch, as Spark evaluated it.
   */
  override def loadTable(ident: Identifier, timestamp: Long): Table =
    MosaicrsTable.forPath(
      MosaicrsCatalog.path(ident),
      TimeTravel.asOf(Math.floorDiv(timestamp, 1000L)))

  override def tableExists(ident: Identifier): Boolean =
    NativeBridge.datasetExists(MosaicrsOptions.resolveLocation(Map("path" -> MosaicrsCatalog.path(ident))))

  override protected def create(
      ident: Identifier,
      schema: StructType,
      partitions: Array[Transform],
      properties: util.Map[String, String]): Table = {
    MosaicrsDataSource.refusePartitioning(partitions)
    MosaicrsTable.forPath(MosaicrsCatalog.path(ident), createOnly = true)
  }

  override def alterTable(ident: Identifier, changes: TableChange*): Table =
    throw new MosaicrsInvalidInputException(
      s"a mosaicrs dataset cannot be altered (${MosaicrsCatalog.path(ident)}); overwrite it instead")

  /** Never deletes data: a failed create-and-write has already removed its own files. */
  override def dropTable(ident: Identifier): Boolean = false

  override def renameTable(oldIdent: Identifier, newIdent: Identifier): Unit =
    throw new MosaicrsInvalidInputException("mosaicrs datasets are renamed by moving their folder")

  override def listTables(namespace: Array[String]): Array[Identifier] = Array.empty
}

object MosaicrsCatalog {

  /** The name under which the connector registers this catalog in a session. */
  val Name = "mosaicrs_paths"

  /** The identifier of the dataset at `path` (no namespace; the name is the path). */
  def identifier(path: String): Identifier = Identifier.of(Array.empty[String], path)

  def path(ident: Identifier): String = ident.name()

  /**
   * Registers the catalog in the active (else the default) session, if it
   * is not yet, and returns its name. A session-level setting, like any
   * `spark.sql.catalog.*`.
   */
  def register(): String = {
    val key = s"spark.sql.catalog.$Name"
    SparkSession.getActiveSession.orElse(SparkSession.getDefaultSession).foreach { session =>
      if (!session.conf.getOption(key).contains(classOf[MosaicrsCatalog].getName)) {
        session.conf.set(key, classOf[MosaicrsCatalog].getName)
      }
    }
    Name
  }
}
