package io.mosaicrs.spark

import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.connector.write.{DataWriter, DataWriterFactory}

/** Ships a [[MosaicrsWriteJob]] to the executors and opens one writer per task attempt. */
final class MosaicrsDataWriterFactory(job: MosaicrsWriteJob) extends DataWriterFactory {

  /** `taskId` is the task attempt id, unique in the application: retries and
   *  speculative copies of a partition get different shard names. */
  override def createWriter(partitionId: Int, taskId: Long): DataWriter[InternalRow] =
    new MosaicrsDataWriter(job, partitionId, taskId)
}
