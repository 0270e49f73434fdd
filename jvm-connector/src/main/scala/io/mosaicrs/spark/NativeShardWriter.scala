package io.mosaicrs.spark

import java.util.concurrent.atomic.AtomicLong

import io.mosaicrs.spark.jni.{MosaicrsInternalException, NativeBridge, ShardEntry}

/**
 * Owns one native task writer through its `long` handle.
 *
 * The handle is swapped to 0 before the one native call that consumes it
 * (`finish` or `abort`), so the native object is freed exactly once however
 * often and from wherever `abort` is called (Spark's abort, `close`, the
 * task-completion listener).
 */
final class NativeShardWriter private (initialHandle: Long) {
  private val handle = new AtomicLong(initialHandle)

  /** True until `finish` or `abort`. */
  def isOpen: Boolean = handle.get() != 0

  /** Writes the batch that `rows` holds (see [[ArrowLayoutWriter]]). */
  def write(rows: Int, batch: ArrowLayoutWriter.Batch): Unit =
    NativeBridge.writeColumns(current(), rows, batch.nodeLengths, batch.buffers, batch.bufferLengths)

  /** Seals the shards and returns their entries. */
  def finish(): Array[ShardEntry] = {
    val h = handle.getAndSet(0)
    if (h == 0) throw closed()
    NativeBridge.finishWriter(h)
  }

  /** Deletes what this writer wrote; a no-op once finished or aborted. */
  def abort(): Unit = {
    val h = handle.getAndSet(0)
    if (h != 0) NativeBridge.abortWriter(h)
  }

  private def current(): Long = {
    val h = handle.get()
    if (h == 0) throw closed()
    h
  }

  private def closed() =
    new MosaicrsInternalException("the mosaicrs task writer is already finished or aborted")
}

object NativeShardWriter {

  /** Opens the writer of one task attempt of `job`. */
  def open(job: MosaicrsWriteJob, partition: Int, taskAttempt: Long): NativeShardWriter =
    new NativeShardWriter(
      NativeBridge.openWriter(
        job.location,
        job.arrowSchema,
        job.writeId,
        partition,
        taskAttempt,
        job.options.writer,
        job.options.layoutKeys,
        job.options.layoutValues))
}
