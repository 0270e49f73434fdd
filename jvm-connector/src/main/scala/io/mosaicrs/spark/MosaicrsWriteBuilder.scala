package io.mosaicrs.spark

import io.mosaicrs.spark.jni.SaveMode
import io.mosaicrs.spark.shim.Collections

import org.apache.spark.sql.SparkSession
import org.apache.spark.sql.connector.write.{BatchWrite, LogicalWriteInfo, SupportsTruncate, Write, WriteBuilder}

/**
 * Builds the write of one save or SQL insert into `table`. The save mode
 * follows from how Spark built it: `truncate()` (overwrite, INSERT
 * OVERWRITE) replaces the dataset; a table from CreateTableAsSelect
 * (errorifexists, ignore) must not exist at commit; anything else appends.
 * Options are the table's, overridden by the write's own.
 */
final class MosaicrsWriteBuilder(info: LogicalWriteInfo, table: MosaicrsTable)
    extends SupportsTruncate {
  private var truncated = false

  override def truncate(): WriteBuilder = {
    truncated = true
    this
  }

  /** Who writes, as the commit records it (see [[MosaicrsWriteJob]]). */
  private def writer(): Map[String, String] = {
    val session = SparkSession.getActiveSession.orElse(SparkSession.getDefaultSession)
    val spark = session.toSeq.flatMap { s =>
      val sc = s.sparkContext
      Seq(
        "spark.app.id" -> sc.applicationId,
        "spark.app.name" -> sc.appName,
        "spark.version" -> sc.version) ++
        Option(sc.getLocalProperty("spark.job.description")).map("query" -> _)
    }
    (Seq("engine" -> "spark", "spark.query.id" -> info.queryId()) ++ spark).toMap
  }

  override def build(): Write = {
    val options =
      MosaicrsOptions.parse(table.options ++ Collections.toScala(info.options.asCaseSensitiveMap))
    val mode =
      if (truncated) SaveMode.OVERWRITE
      else if (table.createOnly) SaveMode.ERROR_IF_EXISTS
      else SaveMode.APPEND
    val job = MosaicrsWriteJob.plan(info.schema, options, mode).copy(writer = writer())
    new Write {
      override def description(): String = s"mosaicrs ${job.saveModeName} to ${job.location}"
      override def toBatch: BatchWrite = new MosaicrsBatchWrite(job)
    }
  }
}
