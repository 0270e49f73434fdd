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
    compression: String,
    batchRows: Int)

object MosaicrsOptions {
  val ShardSize = "shardSize"
  val Compression = "compression"
  val BatchRows = "batchRows"

  val DefaultShardSize = "64m"
  val DefaultCompression = "none"
  val DefaultBatchRows = 8192

  /**
   * Set by the connector on its own inner V2 write (see [[MosaicrsDataSource]]):
   * the save mode the user asked for.
   */
  private[spark] val SaveModeKey = "__mosaicrs_save_mode"

  /** Spark's key for the dataset location. */
  private val PathKey = "path"

  /** Keys Spark adds for `partitionBy` / `clusterBy`, which mosaicrs cannot honour. */
  private val PartitioningKeys = Set("__partition_columns", "__clustering_columns")

  private val UserKeys = Seq(ShardSize, Compression, BatchRows)

  /**
   * Parses the options Spark passes to the connector (keys case-insensitive).
   *
   * @throws MosaicrsInvalidInputException naming the option for an unknown key or bad value
   */
  def parse(options: Map[String, String]): MosaicrsOptions = {
    val byKey = options.map { case (k, v) => k.toLowerCase(Locale.ROOT) -> v }
    options.keys.foreach { key =>
      val lower = key.toLowerCase(Locale.ROOT)
      if (PartitioningKeys.contains(lower)) {
        throw new MosaicrsInvalidInputException(
          "mosaicrs does not support partitionBy or clusterBy: a dataset is one folder of " +
            "shards listed in one index; write each part to its own path instead")
      } else if (lower != PathKey && lower != SaveModeKey &&
        !UserKeys.exists(_.toLowerCase(Locale.ROOT) == lower)) {
        throw new MosaicrsInvalidInputException(
          s"unknown mosaicrs option '$key'; the options are ${UserKeys.mkString(", ")}")
      }
    }
    def get(key: String): Option[String] = byKey.get(key.toLowerCase(Locale.ROOT))

    val path = resolvePath(get(PathKey))
    val shardSizeText = get(ShardSize).getOrElse(DefaultShardSize)
    val shardSize = checked(ShardSize, shardSizeText) {
      val bytes = NativeBridge.parseByteSize(shardSizeText)
      NativeBridge.validateWriterOptions(bytes, DefaultBatchRows, DefaultCompression)
      bytes
    }
    val batchRowsText = get(BatchRows).getOrElse(DefaultBatchRows.toString)
    val batchRows = checked(BatchRows, batchRowsText) {
      val rows = batchRowsText.trim.toIntOption.getOrElse {
        throw new MosaicrsInvalidInputException("not a whole number of rows")
      }
      NativeBridge.validateWriterOptions(shardSize, rows, DefaultCompression)
      rows
    }
    val compression = get(Compression).getOrElse(DefaultCompression).trim.toLowerCase(Locale.ROOT)
    checked(Compression, compression) {
      NativeBridge.validateWriterOptions(shardSize, batchRows, compression)
    }
    MosaicrsOptions(path, shardSize, compression, batchRows)
  }

  /** Runs a check of option `key`, prefixing any error with the option and its value. */
  private def checked[T](key: String, value: String)(check: => T): T =
    try check
    catch {
      case e: IllegalArgumentException =>
        throw new MosaicrsInvalidInputException(
          s"invalid value '$value' for mosaicrs option '$key': ${e.getMessage}", e)
    }

  /**
   * The dataset folder as an absolute local path. The native writer uses the
   * local file system, so `file:` URIs are accepted and other schemes refused.
   */
  private[spark] def resolvePath(raw: Option[String]): String = {
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
