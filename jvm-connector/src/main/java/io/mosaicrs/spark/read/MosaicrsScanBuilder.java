package io.mosaicrs.spark.read;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import io.mosaicrs.spark.jni.DatasetLocation;
import io.mosaicrs.spark.jni.MosaicrsIOException;
import io.mosaicrs.spark.jni.MosaicrsInvalidInputException;
import org.apache.spark.sql.connector.read.Scan;
import org.apache.spark.sql.connector.read.ScanBuilder;
import org.apache.spark.sql.connector.read.SupportsPushDownRequiredColumns;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.util.CaseInsensitiveStringMap;

/**
 * {@code spark.read.format("mosaicrs").load(path)} and SQL tables: builds a
 * {@link MosaicrsScan} of the columns a query needs.
 *
 * <pre>{@code
 * spark.read().format("mosaicrs")
 *     .option("partitionSize", "64m")   // a larger shard is split into several tasks
 *     .load("/data/train");
 * spark.read().format("mosaicrs")
 *     .option("storage.aws_region", "eu-west-1")   // object-store settings, see README
 *     .load("s3://bucket/train");
 * spark.read().format("mosaicrs")
 *     .option("versionAsOf", 3)   // or timestampAsOf: "2026-12-07 18:00:00"
 *     .load("/data/train");
 * }</pre>
 *
 * <p>{@code versionAsOf} and {@code timestampAsOf} reach the connector as
 * Spark's time travel ({@code MosaicrsDataSource}'s {@code
 * extractTimeTravelVersion}), which loads the table at that version: the
 * builder reads the version its table names.
 */
public final class MosaicrsScanBuilder implements ScanBuilder, SupportsPushDownRequiredColumns {
  /** Read option: the bytes of shard one task reads at most (split at batch boundaries). */
  public static final String PARTITION_SIZE = "partitionSize";

  /** Read options that pick a version; Spark's time travel applies them (see the class docs). */
  public static final String VERSION_AS_OF = "versionAsOf";
  /** See {@link #VERSION_AS_OF}. */
  public static final String TIMESTAMP_AS_OF = "timestampAsOf";

  /** The partition size when the read options set none (64 MiB). */
  public static final long DEFAULT_PARTITION_BYTES = 64L << 20;

  private final DatasetLocation location;
  private final DatasetSnapshot snapshot;
  private final StructType tableSchema;
  private StructType readSchema;
  /** The read's {@code partitionSize} when it set one, else 0. */
  private final long packBytes;

  /**
   * @param location the dataset: a local folder or an object-store URL, with its storage options
   * @param tableSchema the schema Spark resolved the table with (inferred from
   *     the dataset, given by the user, or kept by the catalog); empty when
   *     Spark found no dataset then: the dataset's own
   * @param options the read options
   * @param resolved the snapshot read while Spark resolved the table, or null;
   *     used when it was planned for this location, partition size and
   *     version, so the driver reads the index once
   * @param version the dataset version to read
   * @throws MosaicrsInvalidInputException naming an unknown option, a bad value,
   *     or a column the dataset does not hold as the table declares it
   * @throws MosaicrsIOException naming the location when there is no dataset or
   *     its index cannot be read
   */
  public MosaicrsScanBuilder(
      DatasetLocation location,
      StructType tableSchema,
      CaseInsensitiveStringMap options,
      DatasetSnapshot resolved,
      TimeTravel version)
      throws MosaicrsIOException {
    this.location = location;
    long partitionBytes = parseOptions(options);
    this.snapshot =
        resolved != null && resolved.plannedFor(location, partitionBytes, version)
            ? resolved
            : DatasetSnapshot.describe(location, partitionBytes, version);
    this.tableSchema =
        tableSchema.isEmpty() ? snapshot.schema() : checkedSchema(location, snapshot.schema(), tableSchema);
    this.readSchema = this.tableSchema;
    this.packBytes = options.get(PARTITION_SIZE) == null ? 0 : partitionBytes;
  }

  private static long parseOptions(CaseInsensitiveStringMap options) {
    for (String key : options.asCaseSensitiveMap().keySet()) {
      String lower = key.toLowerCase(Locale.ROOT);
      if (!lower.equals("path")
          && !lower.startsWith("storage.")
          && !lower.equals(PARTITION_SIZE.toLowerCase(Locale.ROOT))
          && !lower.equals(VERSION_AS_OF.toLowerCase(Locale.ROOT))
          && !lower.equals(TIMESTAMP_AS_OF.toLowerCase(Locale.ROOT))) {
        throw new MosaicrsInvalidInputException(
            "unknown mosaicrs read option '" + key + "'; the read options are " + PARTITION_SIZE
                + ", " + VERSION_AS_OF + ", " + TIMESTAMP_AS_OF
                + " and storage.<key> (object-store settings such as storage.aws_endpoint)");
      }
    }
    String text = options.get(PARTITION_SIZE);
    if (text == null) {
      return DEFAULT_PARTITION_BYTES;
    }
    long bytes;
    try {
      bytes = NativeScan.parseSize(text);
    } catch (IllegalArgumentException e) {
      throw new MosaicrsInvalidInputException(
          "invalid value '" + text + "' for mosaicrs option '" + PARTITION_SIZE + "': " + e.getMessage());
    }
    if (bytes <= 0) {
      throw new MosaicrsInvalidInputException(
          "invalid value '" + text + "' for mosaicrs option '" + PARTITION_SIZE + "': must be positive");
    }
    return bytes;
  }

  /**
   * The table's columns with the dataset's types, after checking that the
   * dataset holds each of them with the declared type (nullability aside).
   */
  private static StructType checkedSchema(
      DatasetLocation location, StructType dataset, StructType tableSchema) {
    Map<String, StructField> byName = new HashMap<>();
    for (StructField field : dataset.fields()) {
      byName.put(field.name(), field);
    }
    List<StructField> fields = new ArrayList<>();
    for (StructField declared : tableSchema.fields()) {
      StructField actual = byName.get(declared.name());
      if (actual == null) {
        throw new MosaicrsInvalidInputException(
            "the mosaicrs dataset at " + location + " has no column `" + declared.name()
                + "`; its columns are " + String.join(", ", dataset.fieldNames()));
      }
      if (!actual.dataType().catalogString().equals(declared.dataType().catalogString())) {
        throw new MosaicrsInvalidInputException(
            "column `" + declared.name() + "` of the mosaicrs dataset at " + location + " is "
                + actual.dataType().catalogString() + ", but the table or schema declares "
                + declared.dataType().catalogString());
      }
      fields.add(actual);
    }
    return new StructType(fields.toArray(new StructField[0]));
  }

  @Override
  public void pruneColumns(StructType requiredSchema) {
    // Whole top-level columns: a nested field is read with its column.
    List<StructField> kept = new ArrayList<>();
    for (StructField field : tableSchema.fields()) {
      if (requiredSchema.getFieldIndex(field.name()).isDefined()) {
        kept.add(field);
      }
    }
    readSchema = new StructType(kept.toArray(new StructField[0]));
  }

  /**
   * The scan that answers {@code counts} pushed {@code COUNT(*)}s from the
   * index's row count (see {@code AggregatePushDown}), opening no shard.
   */
  Scan countScan(int counts) {
    return new MosaicrsCountScan(location, snapshot.totalRows(), counts);
  }

  /**
   * The scan whose tasks fold their rows into partial aggregates (see {@code
   * AggregatePushDown}); {@code kinds} and {@code columns} as {@link
   * MosaicrsAggregateScan} takes them.
   */
  Scan aggregateScan(int[] kinds, String[] columns) {
    return new MosaicrsAggregateScan(location, snapshot, packBytes, tableSchema, kinds, columns);
  }

  /** The table's columns, before any pruning. */
  StructType tableSchema() {
    return tableSchema;
  }

  @Override
  public Scan build() {
    return new MosaicrsScan(location, snapshot, readSchema, packBytes);
  }
}
