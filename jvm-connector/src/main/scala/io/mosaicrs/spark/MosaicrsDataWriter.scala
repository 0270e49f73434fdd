package io.mosaicrs.spark

import org.slf4j.LoggerFactory

import org.apache.spark.TaskContext
import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.connector.write.{DataWriter, WriterCommitMessage}

/**
 * Writes one task attempt's rows: [[ArrowLayoutWriter]] copies them into
 * Arrow-layout byte arrays, and every `batchRows` rows (or 32 MiB) the batch
 * goes to the native writer, which copies it into Arrow arrays and encodes
 * it; the arrays are then reused for the next batch.
 *
 * `commit` seals the shards and reports them; `abort` deletes them. `close`
 * (from Spark, or from the task-completion listener registered here) aborts
 * a writer that was neither committed nor aborted.
 */
final class MosaicrsDataWriter(job: MosaicrsWriteJob, partition: Int, taskAttempt: Long)
    extends DataWriter[InternalRow] {
  import MosaicrsDataWriter._

  private val native = NativeShardWriter.open(job, partition, taskAttempt)
  private val batchRows = job.options.batchRows
  private val rows =
    try new ArrowLayoutWriter(job.sparkSchema, batchRows)
    catch {
      case e: Throwable =>
        // Spark gets no writer to close: release what exists already.
        native.abort()
        throw e
    }
  private var written = 0L
  private var closed = false

  Option(TaskContext.get()).foreach(_.addTaskCompletionListener[Unit](_ => close()))

  override def write(row: InternalRow): Unit = {
    rows.write(row)
    val pending = rows.rows
    if (pending >= batchRows ||
      (pending % SizeCheckRows == 0 && rows.bytesUsed >= MaxBatchBytes)) {
      flush()
    }
  }

  /** Hands the rows collected so far to the native writer as one batch. */
  private def flush(): Unit = if (rows.rows > 0) {
    val pending = rows.rows
    native.write(pending, rows.batch())
    rows.reset()
    written += pending
  }

  override def commit(): WriterCommitMessage = {
    flush()
    val shards = native.finish()
    log.debug(s"mosaicrs: partition $partition attempt $taskAttempt sealed $written rows")
    MosaicrsWriterCommitMessage(partition, taskAttempt, written, shards)
  }

  override def abort(): Unit = native.abort()

  override def close(): Unit = if (!closed) {
    closed = true
    native.abort()
  }
}

object MosaicrsDataWriter {
  private val log = LoggerFactory.getLogger(classOf[MosaicrsDataWriter])

  /** A batch is also sent once its buffers reach this size, bounding task memory. */
  private val MaxBatchBytes = 32L << 20

  /** How often (in rows) the batch size is measured. */
  private val SizeCheckRows = 128
}
