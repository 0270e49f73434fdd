package io.mosaicrs.spark.read;

/**
 * What one read of a dataset's index says about its scan: the schemas, the
 * totals and the scan partitions. Built by the native library ({@link
 * NativeScan#describe}); {@link DatasetSnapshot} is the driver's view of it.
 */
final class ScanDescription {
  /** The dataset's schema as Spark's JSON of a {@code StructType}. */
  final String sparkSchemaJson;

  /** The dataset's Arrow schema, base64 of an IPC schema stream, as the index holds it. */
  final String arrowSchema;

  final long totalRows;
  final long totalBytes;

  /** The scan partitions: ranges of record batches of one shard, with its index entry. */
  final MosaicrsInputPartition[] partitions;

  ScanDescription(
      String sparkSchemaJson,
      String arrowSchema,
      long totalRows,
      long totalBytes,
      MosaicrsInputPartition[] partitions) {
    this.sparkSchemaJson = sparkSchemaJson;
    this.arrowSchema = arrowSchema;
    this.totalRows = totalRows;
    this.totalBytes = totalBytes;
    this.partitions = partitions;
  }
}
