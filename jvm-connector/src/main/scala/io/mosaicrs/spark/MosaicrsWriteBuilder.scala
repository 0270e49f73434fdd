package io.mosaicrs.spark

import scala.jdk.CollectionConverters._

import io.mosaicrs.spark.jni.MosaicrsInternalException

import org.apache.spark.sql.connector.write.{BatchWrite, LogicalWriteInfo, SupportsTruncate, Write, WriteBuilder}

/**
 * Builds the write of the connector's inner V2 save. `truncate()` (Spark's
 * overwrite) makes it replace the dataset; otherwise the save mode comes from
 * the option the connector set (see [[MosaicrsDataSource]]).
 */
final class MosaicrsWriteBuilder(info: LogicalWriteInfo) extends SupportsTruncate {
  private var truncated = false

  override def truncate(): WriteBuilder = {
    truncated = true
    this
  }

  override def build(): Write = {
    val options = MosaicrsOptions.parse(info.options.asCaseSensitiveMap.asScala.toMap)
    val requested = Option(info.options.get(MosaicrsOptions.SaveModeKey)).getOrElse {
      throw new MosaicrsInternalException("the inner mosaicrs write has no save mode")
    }
    if (truncated != (requested == "overwrite")) {
      throw new MosaicrsInternalException(
        s"save mode $requested does not match Spark's truncate flag ($truncated)")
    }
    val job = MosaicrsWriteJob.plan(info.schema, options, requested)
    new Write {
      override def description(): String = s"mosaicrs ${job.saveMode} to ${job.path}"
      override def toBatch: BatchWrite = new MosaicrsBatchWrite(job)
    }
  }
}
