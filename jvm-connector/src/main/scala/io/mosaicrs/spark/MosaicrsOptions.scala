package io.mosaicrs.spark

import java.io.File
import java.net.URI
import java.util.Locale

import io.mosaicrs.spark.jni.{MosaicrsInvalidInputException, NativeBridge}

/**
 * The options of `df.write.format("mosaicrs")`, parsed and checked on the
 * driver before any task runs.
 *
 * {{{
 * df.write.format("mosaicrs")
 *   .option("shardSize", "128m")     // bytes per shard before it rolls over
 *   .option("compression", "zstd")   // none (default), zstd or lz4
 *   .option("batchRows", "8192")     // rows per Arrow record batch
 *   .save("/data/train")
 * }}}
 *
 * @param path           absolute path of the dataset folder
 * @param shardSizeBytes a shard is sealed once it holds this many bytes
 * @param compression    Arrow IPC buffer compression of the shards
 * @param batchRows      rows per record batch, from the JVM to Rust and in the shards
 */
final case class MosaicrsOptions(
    path: String,
    shardSizeBytes: Long,
    compression: Int,
    batchRows: Int)

object MosaicrsOptions {
  val ShardSize = "shardSize"
  val Compression = "compression"
  val BatchRows = "batchRows"

  /** Spark's key for the dataset location. */
  private val PathKey = "path"

  /** Keys that Spark's catalogs add to a table's properties (SQL tables). */
  private val SparkKeys = Set("provider", "location", "owner", "external", "comment")

  /** Keys Spark adds for `partitionBy` / `clusterBy`, which mosaicrs cannot honour. */
  private val PartitioningKeys = Set("__partition_columns", "__clustering_columns")

  /**
   * Parses the options Spark passes to the connector (keys case-insensitive).
   * The writer options are checked by the native library in one call, with
   * the rules its writers apply; its message names the bad option and value.
   *
   * @throws MosaicrsInvalidInputException naming the option for an unknown key or bad value
   */
  def parse(options: Map[String, String]): MosaicrsOptions = {
    val writerOptions = options.filter { case (key, _) =>
      val lower = key.toLowerCase(Locale.ROOT)
      if (PartitioningKeys.contains(lower)) {
        throw new MosaicrsInvalidInputException(
          "mosaicrs does not support partitionBy or clusterBy: a dataset is one folder of " +
            "shards listed in one index; write each part to its own path instead")
      }
      lower != PathKey && !SparkKeys.contains(lower)
    }.toSeq
    val path = resolvePath(options.collectFirst {
      case (k, v) if k.equalsIgnoreCase(PathKey) => v
    })
    val parsed = NativeBridge.parseWriterOptions(
      writerOptions.map(_._1).toArray,
      writerOptions.map(_._2).toArray)
    MosaicrsOptions(path, parsed(0), parsed(2).toInt, parsed(1).toInt)
  }

  /**
   * The dataset folder as an absolute local path. The native writer uses the
   * local file system, so `file:` URIs are accepted and other schemes refused.
   */
  def resolvePath(raw: Option[String]): String = {
    val text = raw.map(_.trim).filter(_.nonEmpty).getOrElse {
      throw new MosaicrsInvalidInputException(
        "mosaicrs needs a path: df.write.format(\"mosaicrs\").save(\"/path/to/dataset\")")
    }
    val local = if (text.matches("^[a-zA-Z][a-zA-Z0-9+.-]*:.*") && !text.matches("^[a-zA-Z]:\\\\.*")) {
      val uri = new URI(text)
      if (!"file".equalsIgnoreCase(uri.getScheme)) {
        throw new MosaicrsInvalidInputException(
          s"mosaicrs writes to a local or shared (e.g. NFS) file system; path '$text' has " +
            s"scheme '${uri.getScheme}'")
      }
      uri.getPath
    } else {
      text
    }
    val folder = new File(local).getAbsoluteFile.toPath.normalize.toFile
    if (folder.exists && !folder.isDirectory) {
      throw new MosaicrsInvalidInputException(
        s"mosaicrs path $folder is a file; a dataset is a folder")
    }
    folder.toString
  }
}
