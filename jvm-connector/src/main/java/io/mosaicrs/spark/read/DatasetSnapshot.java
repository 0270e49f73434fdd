package io.mosaicrs.spark.read;

import io.mosaicrs.spark.jni.DatasetLocation;
import io.mosaicrs.spark.jni.MosaicrsIOException;
import io.mosaicrs.spark.jni.MosaicrsInvalidInputException;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.StructType;

/**
 * A dataset as one read of its index shows it: the schema, the totals and the
 * scan partitions, each carrying its shard's index entry so that a task reads
 * no index. The driver takes one per scan (the table's schema and the first
 * scan share it).
 */
public final class DatasetSnapshot {
  private final DatasetLocation location;
  private final long partitionBytes;
  private final TimeTravel version;
  private final StructType schema;
  private final String arrowSchema;
  private final long totalRows;
  private final long totalBytes;
  private final MosaicrsInputPartition[] partitions;

  private DatasetSnapshot(
      DatasetLocation location, long partitionBytes, TimeTravel version, ScanDescription described) {
    this.location = location;
    this.partitionBytes = partitionBytes;
    this.version = version;
    this.schema = (StructType) DataType.fromJson(described.sparkSchemaJson);
    this.arrowSchema = described.arrowSchema;
    this.totalRows = described.totalRows;
    this.totalBytes = described.totalBytes;
    this.partitions = described.partitions;
  }

  /**
   * Reads the index of the dataset at {@code location} and plans its scan in
   * partitions of about {@code partitionBytes}.
   *
   * @throws MosaicrsIOException naming the location when there is no dataset
   *     or its index cannot be read
   * @throws MosaicrsInvalidInputException naming the column when a column has
   *     no Spark type
   */
  public static DatasetSnapshot describe(DatasetLocation location, long partitionBytes)
      throws MosaicrsIOException {
    return describe(location, partitionBytes, TimeTravel.LATEST);
  }

  /**
   * {@link #describe(DatasetLocation, long)} of one version of the dataset.
   *
   * @throws io.mosaicrs.spark.jni.MosaicrsVersionNotFoundException naming the
   *     version and the oldest kept one when the version is not kept
   */
  public static DatasetSnapshot describe(
      DatasetLocation location, long partitionBytes, TimeTravel version)
      throws MosaicrsIOException {
    return new DatasetSnapshot(
        location,
        partitionBytes,
        version,
        NativeScan.describe(location, partitionBytes, version.version(), version.asOfMs()));
  }

  /**
   * True when this snapshot was planned for the scan of {@code version} of
   * {@code location} in such partitions.
   */
  boolean plannedFor(DatasetLocation location, long partitionBytes, TimeTravel version) {
    return this.location.equals(location)
        && this.partitionBytes == partitionBytes
        && this.version.equals(version);
  }

  /** The dataset's Spark schema. */
  public StructType schema() {
    return schema;
  }

  /** The dataset's Arrow schema, base64 of an IPC schema stream, as the index holds it. */
  String arrowSchema() {
    return arrowSchema;
  }

  long totalRows() {
    return totalRows;
  }

  long totalBytes() {
    return totalBytes;
  }

  MosaicrsInputPartition[] partitions() {
    return partitions.clone();
  }
}
