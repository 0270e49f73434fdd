package io.mosaicrs.spark

import io.mosaicrs.spark.jni.ShardEntry

import org.apache.spark.sql.connector.write.WriterCommitMessage

/**
 * What a task attempt reports after sealing its shards: their entries, as
 * the native writer returned them. Only the driver's commit makes them
 * visible.
 *
 * @param rows rows the attempt wrote, for logging
 */
final case class MosaicrsWriterCommitMessage(
    partition: Int,
    taskAttempt: Long,
    rows: Long,
    shards: Array[ShardEntry])
    extends WriterCommitMessage
