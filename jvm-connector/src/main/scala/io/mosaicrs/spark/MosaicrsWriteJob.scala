package io.mosaicrs.spark

import java.util.UUID

import io.mosaicrs.spark.jni.NativeBridge

import org.apache.spark.sql.types.StructType

/**
 * One save, planned on the driver and shipped to every task.
 *
 * @param writeId     unique per save; part of every shard name, with the
 *                    partition and the task attempt, so attempts never share a file
 * @param saveMode    the mode the commit applies: errorifexists, append, overwrite, ignore
 * @param sparkSchema the rows' schema, every field nullable (see [[MosaicrsTypes]])
 * @param arrowSchema the dataset's Arrow schema, base64 IPC (see [[MosaicrsTypes.arrowSchemaBase64]])
 */
final case class MosaicrsWriteJob(
    writeId: String,
    saveMode: String,
    sparkSchema: StructType,
    arrowSchema: String,
    options: MosaicrsOptions) {

  def path: String = options.path
}

object MosaicrsWriteJob {

  /**
   * Plans a save of rows with `schema`. Everything that can be checked before
   * a task runs is checked here: types, and for append the existing schema.
   */
  def plan(schema: StructType, options: MosaicrsOptions, saveMode: String): MosaicrsWriteJob = {
    MosaicrsTypes.check(schema)
    val stored = MosaicrsTypes.nullable(schema)
    val arrowSchema = MosaicrsTypes.arrowSchemaBase64(stored)
    if (saveMode == "append") {
      NativeBridge.checkAppendSchema(options.path, arrowSchema)
    }
    val writeId = UUID.randomUUID().toString.replace("-", "")
    MosaicrsWriteJob(writeId, saveMode, stored, arrowSchema, options)
  }
}
