package io.mosaicrs.spark

import java.io.File
import java.net.URI
import java.util.Locale
import java.util.concurrent.ConcurrentHashMap

import io.mosaicrs.spark.jni.{DatasetLocation, MosaicrsInvalidInputException, NativeBridge, WriterSettings}
import io.mosaicrs.spark.shim.Collections

import org.apache.spark.sql.SparkSession

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
 *
 * df.write.format("mosaicrs")
 *   .option("pack.features", "x0,x1,x2")  // these numeric columns, row-major, as one column
 *   .option("fixedLength.emb", "128")     // array<float> column whose rows all hold 128 values
 *   .save("/data/train")
 *
 * df.write.format("mosaicrs")
 *   .option("storage.aws_endpoint", "http://minio:9000")   // object-store settings
 *   .save("s3://bucket/train")
 *
 * df.write.format("mosaicrs").mode("append")
 *   .option("metadata.run", "nightly")   // recorded with the commit; `mosaicrs log` shows it
 *   .save("/data/train")
 * }}}
 *
 * @param location the dataset: a local folder or an object-store URL, with its storage options
 * @param writer   shard size, rows per batch and compression, as the native library checked them
 * @param layout   the column layout options (`pack.<name>`, `fixedLength.<column>`), as given
 * @param commit   the options the driver's commit applies (`metadata.<key>`), as given
 */
final case class MosaicrsOptions(
    location: DatasetLocation,
    writer: WriterSettings,
    layout: Seq[(String, String)] = Seq.empty,
    commit: Seq[(String, String)] = Seq.empty) {

  /** Rows per record batch, from the JVM to Rust and in the shards. */
  def batchRows: Int = writer.batchRows

  /** The layout options' keys, in the order of [[layoutValues]], for the native calls. */
  def layoutKeys: Array[String] = layout.map(_._1).toArray

  /** The layout options' values, in the order of [[layoutKeys]]. */
  def layoutValues: Array[String] = layout.map(_._2).toArray
}

object MosaicrsOptions {
  val ShardSize = "shardSize"
  val Compression = "compression"
  val BatchRows = "batchRows"

  /** Option key prefixes of the column layout (see `mosaicrs::writer::ColumnLayout`). */
  val LayoutPrefixes = Seq("pack.", "fixedlength.")

  /** Option key prefix of the user metadata recorded with the commit. */
  val MetadataPrefix = "metadata."

  /** True for the options the driver's commit applies (`metadata.<key>`). */
  def isCommitKey(key: String): Boolean = {
    val lower = key.toLowerCase(Locale.ROOT)
    lower.startsWith(MetadataPrefix) || lower == "mergeschema"
  }

  /** True for the column layout options (`pack.<name>`, `fixedLength.<column>`). */
  def isLayoutKey(key: String): Boolean = {
    val lower = key.toLowerCase(Locale.ROOT)
    LayoutPrefixes.exists(lower.startsWith)
  }

  /**
   * Options with this prefix configure the object store (`storage.aws_region`,
   * `storage.aws_endpoint`, ...: the `object_store` crate's names). The same
   * keys under `spark.mosaicrs.storage.` in the session's configuration apply
   * to every mosaicrs read and write of the session; options win over them.
   */
  val StoragePrefix = "storage."
  val SessionStoragePrefix = "spark.mosaicrs." + StoragePrefix

  /** Spark's key for the dataset location. */
  private val PathKey = "path"

  /** Keys that Spark's catalogs add to a table's properties (SQL tables). */
  private val SparkKeys = Set("provider", "location", "owner", "external", "comment")

  /** Keys Spark adds for `partitionBy` / `clusterBy`, which mosaicrs cannot honour. */
  private val PartitioningKeys = Set("__partition_columns", "__clustering_columns")

  /** URL schemes the native storage layer serves; `file` and plain paths are local. */
  private val StoreSchemes =
    Set("s3", "s3a", "gs", "az", "adl", "azure", "abfs", "abfss", "http", "https")

  /**
   * The storage options last given for each dataset URL on this driver.
   * Spark hands a path catalog only an identifier (which must not carry
   * secrets, since plans and the UI print it), so [[MosaicrsDataSource]]
   * records a save's or load's storage options here when it names the
   * table, and the catalog's `tableExists` and `loadTable` find them.
   */
  private val recentStorageOptions = new ConcurrentHashMap[String, Map[String, String]]()

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
      lower != PathKey && !SparkKeys.contains(lower) && !lower.startsWith(StoragePrefix)
    }.toSeq
    val location = resolveLocation(options)
    val settings = NativeBridge.parseWriterOptions(
      writerOptions.map(_._1).toArray,
      writerOptions.map(_._2).toArray)
    val layout = writerOptions.filter { case (key, _) => isLayoutKey(key) }
    val commit = writerOptions.filter { case (key, _) => isCommitKey(key) }
    MosaicrsOptions(location, settings, layout, commit)
  }

  /**
   * The dataset location that `options` name (their `path`), with its
   * storage options: the session's `spark.mosaicrs.storage.*`, then those
   * recorded for this URL by [[remember]], then the `storage.*` of `options`.
   */
  def resolveLocation(options: Map[String, String]): DatasetLocation = {
    val url = resolvePath(options.collectFirst { case (k, v) if k.equalsIgnoreCase(PathKey) => v })
    val storage = sessionStorageOptions() ++
      Option(recentStorageOptions.get(url)).getOrElse(Map.empty) ++
      storageOptions(options)
    new DatasetLocation(url, Collections.toJava(storage))
  }

  /**
   * Records the storage options of `options` for their dataset URL (see
   * [[recentStorageOptions]]) and returns that URL.
   */
  def remember(options: Map[String, String]): String = {
    val location = resolveLocation(options)
    val own = storageOptions(options)
    if (own.nonEmpty) recentStorageOptions.put(location.url, own)
    location.url
  }

  /** The `storage.*` options of `options`, keys without the prefix and lower-cased. */
  def storageOptions(options: Map[String, String]): Map[String, String] =
    options.collect {
      case (k, v) if k.toLowerCase(Locale.ROOT).startsWith(StoragePrefix) =>
        k.substring(StoragePrefix.length).toLowerCase(Locale.ROOT) -> v
    }

  /** True for keys that hold storage options, which are never shown as table properties. */
  def isStorageKey(key: String): Boolean = key.toLowerCase(Locale.ROOT).startsWith(StoragePrefix)

  private def sessionStorageOptions(): Map[String, String] =
    SparkSession.getActiveSession.orElse(SparkSession.getDefaultSession) match {
      case Some(session) =>
        session.conf.getAll.collect {
          case (k, v) if k.toLowerCase(Locale.ROOT).startsWith(SessionStoragePrefix) =>
            k.substring(SessionStoragePrefix.length).toLowerCase(Locale.ROOT) -> v
        }
      case None => Map.empty
    }

  /**
   * The dataset location as an absolute local path (a plain path or a
   * `file:` URI), or an object-store URL kept as given (`s3://`, `s3a://`,
   * `gs://`, `az://`, `abfss://`, read-only `https://`).
   */
  def resolvePath(raw: Option[String]): String = {
    val text = raw.map(_.trim).filter(_.nonEmpty).getOrElse {
      throw new MosaicrsInvalidInputException(
        "mosaicrs needs a path: df.write.format(\"mosaicrs\").save(\"/path/to/dataset\") " +
          "or .save(\"s3://bucket/dataset\")")
    }
    val local = if (text.matches("^[a-zA-Z][a-zA-Z0-9+.-]*:.*") && !text.matches("^[a-zA-Z]:\\\\.*")) {
      val uri = new URI(text)
      val scheme = uri.getScheme.toLowerCase(Locale.ROOT)
      if (StoreSchemes.contains(scheme)) {
        if (uri.getUserInfo != null) {
          throw new MosaicrsInvalidInputException(
            s"mosaicrs location with scheme '$scheme' must not carry credentials in the URL; " +
              "pass them as storage.<key> options or in the environment")
        }
        return text.stripSuffix("/")
      }
      if (scheme != "file") {
        throw new MosaicrsInvalidInputException(
          s"mosaicrs location '$text' has scheme '${uri.getScheme}'; use a local path, file://, " +
            "s3://, gs://, az://, abfss:// or https://")
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
