package io.mosaicrs.spark

import java.util

import io.mosaicrs.spark.jni.{MosaicrsInvalidInputException, NativeBridge}
import io.mosaicrs.spark.read.NativeScan

import org.apache.spark.sql.{DataFrame, SaveMode, SQLContext}
import org.apache.spark.sql.connector.catalog.{Table, TableProvider}
import org.apache.spark.sql.connector.expressions.Transform
import org.apache.spark.sql.sources.{BaseRelation, CreatableRelationProvider, DataSourceRegister}
import org.apache.spark.sql.types.{DataType, StructType}
import org.apache.spark.sql.util.CaseInsensitiveStringMap

/**
 * The `mosaicrs` Spark data source: `df.write.format("mosaicrs").save(path)`.
 *
 * Spark 4's DataFrameWriter refuses the default save mode (ErrorIfExists)
 * and Ignore for a DSv2 TableProvider whose table supports batch writes. So a
 * save happens in two steps, both public API:
 *
 *  1. The user's save reaches [[createRelation]] (the table Spark sees first
 *     advertises no batch write, see [[MosaicrsTable]]). It checks the
 *     options, the column types and the save mode against the path on the
 *     driver, before any task runs: ErrorIfExists fails if a dataset exists,
 *     Ignore returns without writing.
 *  2. It then runs the real DSv2 write: the same DataFrame, saved with
 *     Spark's append or overwrite, plus an internal option carrying the
 *     user's mode. Tasks write shards through [[MosaicrsDataWriter]]; the
 *     driver commits in [[MosaicrsBatchWrite]], applying the mode atomically
 *     (so a dataset created concurrently still makes ErrorIfExists fail).
 */
final class MosaicrsDataSource
    extends TableProvider
    with CreatableRelationProvider
    with DataSourceRegister {

  override def shortName(): String = MosaicrsDataSource.ShortName

  override def toString: String = MosaicrsDataSource.ShortName

  /**
   * Writes pass the DataFrame's schema to [[getTable]], and so do reads with
   * a user schema or a catalog table; the scan checks it against the dataset.
   */
  override def supportsExternalMetadata(): Boolean = true

  /** A read without a schema: the dataset's, from its index. */
  override def inferSchema(options: CaseInsensitiveStringMap): StructType =
    NativeScan.sparkSchema(MosaicrsOptions.resolvePath(Option(options.get("path"))))

  override def getTable(
      schema: StructType,
      partitioning: Array[Transform],
      properties: util.Map[String, String]): Table = {
    if (partitioning.nonEmpty) {
      throw new MosaicrsInvalidInputException(
        "mosaicrs does not support partitionBy: a dataset is one folder of shards listed in " +
          "one index; write each part to its own path instead")
    }
    new MosaicrsTable(schema, properties)
  }

  /** Types are checked in [[createRelation]], whose message names nested fields too. */
  override def supportsDataType(dataType: DataType): Boolean = true

  override def createRelation(
      sqlContext: SQLContext,
      mode: SaveMode,
      parameters: Map[String, String],
      data: DataFrame): BaseRelation = {
    val options = MosaicrsOptions.parse(parameters)
    MosaicrsTypes.check(data.schema)
    val exists = NativeBridge.datasetExists(options.path)
    val innerMode: Option[String] = mode match {
      case SaveMode.ErrorIfExists if exists =>
        throw new MosaicrsInvalidInputException(
          s"a mosaicrs dataset already exists at ${options.path}; choose save mode append, " +
            "overwrite or ignore")
      case SaveMode.Ignore if exists => None
      case SaveMode.ErrorIfExists => Some("errorifexists")
      case SaveMode.Ignore => Some("ignore")
      case SaveMode.Append => Some("append")
      case SaveMode.Overwrite => Some("overwrite")
    }
    innerMode.foreach { m =>
      data.write
        .format(classOf[MosaicrsDataSource].getName)
        .options(parameters.filter { case (k, _) => !k.equalsIgnoreCase("path") })
        .option(MosaicrsOptions.SaveModeKey, m)
        .mode(if (m == "overwrite") SaveMode.Overwrite else SaveMode.Append)
        .save(options.path)
    }
    val (context, written) = (sqlContext, data.schema)
    new BaseRelation {
      override def sqlContext: SQLContext = context
      override def schema: StructType = written
    }
  }
}

object MosaicrsDataSource {

  /** The name users pass to `format(...)`. */
  val ShortName = "mosaicrs"
}
