package io.mosaicrs.spark

import org.apache.arrow.c.{ArrowArray, ArrowSchema, Data}
import org.apache.arrow.memory.{BufferAllocator, RootAllocator}
import org.apache.arrow.vector.VectorSchemaRoot
import org.slf4j.LoggerFactory

import org.apache.spark.TaskContext
import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.connector.write.{DataWriter, WriterCommitMessage}
import org.apache.spark.sql.mosaicrs.SparkInternals

/**
 * Writes one task attempt's rows: rows are copied into Arrow vectors, and
 * every `batchRows` rows (or 32 MiB) the batch goes to the native writer
 * through the Arrow C Data Interface, without copying.
 *
 * `commit` seals the shards and reports them; `abort` deletes them. `close`
 * (from Spark, or from the task-completion listener registered here) aborts
 * a writer that was neither committed nor aborted, and frees the Arrow memory.
 */
final class MosaicrsDataWriter(job: MosaicrsWriteJob, partition: Int, taskAttempt: Long)
    extends DataWriter[InternalRow] {
  import MosaicrsDataWriter._

  private val native = NativeShardWriter.open(job, partition, taskAttempt)
  private val allocator: BufferAllocator =
    rootAllocator.newChildAllocator(s"mosaicrs-task-$taskAttempt", 0, Long.MaxValue)
  private val (root, rows) =
    try {
      val vectors =
        VectorSchemaRoot.create(SparkInternals.toArrowSchema(job.sparkSchema), allocator)
      (vectors, SparkInternals.rowWriter(vectors))
    } catch {
      case e: Throwable =>
        // Spark gets no writer to close: release what exists already.
        allocator.close()
        native.abort()
        throw e
    }
  private var pending = 0
  private var written = 0L
  private var closed = false

  Option(TaskContext.get()).foreach(_.addTaskCompletionListener[Unit](_ => close()))

  override def write(row: InternalRow): Unit = {
    rows.write(row)
    pending += 1
    if (pending >= job.options.batchRows ||
      (pending % SizeCheckRows == 0 && rows.sizeInBytes >= MaxBatchBytes)) {
      flush()
    }
  }

  /** Hands the rows collected so far to the native writer as one batch. */
  private def flush(): Unit = if (pending > 0) {
    rows.finish()
    val array = ArrowArray.allocateNew(allocator)
    val schema = ArrowSchema.allocateNew(allocator)
    try {
      Data.exportVectorSchemaRoot(allocator, root, null, array, schema)
      native.write(array.memoryAddress(), schema.memoryAddress())
    } finally {
      // The native side moved both structs out (marking them released); if
      // the call failed before that, this releases the exported buffers.
      array.release()
      array.close()
      schema.release()
      schema.close()
    }
    rows.reset()
    written += pending
    pending = 0
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
    try native.abort()
    finally {
      try {
        root.close()
        allocator.close()
      } catch {
        // Arrow reports leaked buffers here; the data path is already done,
        // so this must not fail a task whose shards were committed.
        case e: IllegalStateException =>
          log.error(s"mosaicrs: Arrow memory of task attempt $taskAttempt not freed cleanly", e)
      }
    }
  }
}

object MosaicrsDataWriter {
  private val log = LoggerFactory.getLogger(classOf[MosaicrsDataWriter])

  /** A batch is also sent once its buffers reach this size, bounding task memory. */
  private val MaxBatchBytes = 32L << 20

  /** How often (in rows) the batch size is measured. */
  private val SizeCheckRows = 128

  /** Arrow memory of all mosaicrs tasks in this JVM. */
  private lazy val rootAllocator: BufferAllocator = new RootAllocator(Long.MaxValue)
}
