package io.mosaicrs.spark

import org.apache.spark.sql.connector.write.WriterCommitMessage

/**
 * What a task attempt reports after sealing its shards: their entries, as the
 * JSON array the native writer returned. Only the driver's commit makes them
 * visible.
 *
 * @param rows rows the attempt wrote, for logging
 */
final case class MosaicrsWriterCommitMessage(
    partition: Int,
    taskAttempt: Long,
    rows: Long,
    shardsJson: String)
    extends WriterCommitMessage
