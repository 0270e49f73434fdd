package io.mosaicrs.spark

import io.mosaicrs.spark.jni.NativeBridge
import org.slf4j.LoggerFactory

import org.apache.spark.sql.connector.write.{BatchWrite, DataWriterFactory, PhysicalWriteInfo, WriterCommitMessage}

/**
 * The driver's side of one save.
 *
 * Spark's output commit coordinator lets one attempt per partition commit,
 * so `commit` receives one message per partition. The native commit writes
 * the new index atomically, listing exactly those shards, then deletes every
 * other file of this write (failed and speculative attempts). `abort` deletes
 * every file of this write that no index lists; the previous dataset stays.
 */
final class MosaicrsBatchWrite(job: MosaicrsWriteJob) extends BatchWrite {
  import MosaicrsBatchWrite.log

  override def createBatchWriterFactory(info: PhysicalWriteInfo): DataWriterFactory =
    new MosaicrsDataWriterFactory(job)

  override def useCommitCoordinator(): Boolean = true

  override def commit(messages: Array[WriterCommitMessage]): Unit = {
    val shards = messages.collect { case m: MosaicrsWriterCommitMessage => m.shards }.flatten
    val (writerKeys, writerValues) = job.writer.toSeq.unzip
    val outcome = NativeBridge.commitWith(
      job.location,
      job.storedSchema,
      job.writeId,
      shards,
      job.saveMode,
      job.options.commit.map(_._1).toArray,
      job.options.commit.map(_._2).toArray,
      writerKeys.toArray,
      writerValues.toArray)
    log.info(s"mosaicrs: write ${job.writeId} (${job.saveModeName}) to ${job.location}: $outcome")
  }

  override def abort(messages: Array[WriterCommitMessage]): Unit = {
    val removed = NativeBridge.abortWrite(job.location, job.writeId)
    log.warn(s"mosaicrs: write ${job.writeId} to ${job.location} aborted; removed " +
      removed.mkString(", "))
  }
}

object MosaicrsBatchWrite {
  private val log = LoggerFactory.getLogger(classOf[MosaicrsBatchWrite])
}
