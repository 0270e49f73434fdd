package io.mosaicrs.spark

import java.util.UUID

import io.mosaicrs.spark.jni.{DatasetLocation, NativeBridge, SaveMode}

import org.apache.spark.sql.types.StructType

/**
 * One save, planned on the driver and shipped to every task.
 *
 * @param writeId     unique per save; part of every shard name, with the
 *                    partition and the task attempt, so attempts never share a file
 * @param saveMode    the mode the commit applies
 * @param sparkSchema the rows' schema, every field nullable (see [[MosaicrsTypes]])
 * @param arrowSchema the rows' Arrow schema, base64 IPC (see [[MosaicrsTypes.arrowSchemaBase64]])
 * @param storedSchema the dataset's Arrow schema, base64 IPC: the rows' under the
 *                    options' column layout (packed columns, fixed-size lists)
 * @param writer      who writes, recorded with the commit: `engine` = spark, the
 *                    application's id and name, Spark's version, the query id and
 *                    the job description when the user set one
 */
final case class MosaicrsWriteJob(
    writeId: String,
    saveMode: SaveMode,
    sparkSchema: StructType,
    arrowSchema: String,
    storedSchema: String,
    options: MosaicrsOptions,
    writer: Map[String, String] = Map.empty) {

  /** Where the dataset lives (its `toString` shows no storage option values). */
  def location: DatasetLocation = options.location

  /** The save mode's name, for messages. */
  def saveModeName: String = saveMode.sparkName
}

object MosaicrsWriteJob {

  /**
   * Plans a save of rows with `schema`. Everything that can be checked before
   * a task runs is checked here: types, the column layout, and for append
   * the existing schema (which `mergeSchema` lets the rows extend by nullable columns).
   */
  def plan(schema: StructType, options: MosaicrsOptions, saveMode: SaveMode): MosaicrsWriteJob = {
    MosaicrsTypes.check(schema)
    val rows = MosaicrsTypes.nullable(schema)
    val arrowSchema = MosaicrsTypes.arrowSchemaBase64(rows)
    val storedSchema =
      if (options.layout.isEmpty) arrowSchema
      else NativeBridge.storedSchema(arrowSchema, options.layoutKeys, options.layoutValues)
    if (saveMode == SaveMode.APPEND) {
      NativeBridge.checkAppendSchema(options.location, storedSchema, options.writer.mergeSchema)
    }
    val writeId = UUID.randomUUID().toString.replace("-", "")
    MosaicrsWriteJob(writeId, saveMode, rows, arrowSchema, storedSchema, options)
  }
}
