package io.mosaicrs.spark.jni;

import java.io.Serializable;

/**
 * One sealed shard, as the native task writer reports it: the payload of a
 * task's commit message, and what the driver's commit lists in the index.
 * Built by the native library ({@link NativeBridge#finishWriter}) and read
 * back by it ({@link NativeBridge#commit}), field by field.
 */
public final class ShardEntry implements Serializable {
  private static final long serialVersionUID = 1L;

  /** File name relative to the dataset folder. */
  public final String path;

  public final long rows;
  public final long bytes;
  public final int batches;

  /** {@code xxh3-64:<hex>} of the whole file. */
  public final String checksum;

  public final Compression compression;

  public final String writeId;
  public final int partition;
  public final long taskAttempt;

  public ShardEntry(
      String path,
      long rows,
      long bytes,
      int batches,
      String checksum,
      Compression compression,
      String writeId,
      int partition,
      long taskAttempt) {
    this.path = path;
    this.rows = rows;
    this.bytes = bytes;
    this.batches = batches;
    this.checksum = checksum;
    this.compression = compression;
    this.writeId = writeId;
    this.partition = partition;
    this.taskAttempt = taskAttempt;
  }

  @Override
  public String toString() {
    return path + " (" + rows + " rows, " + bytes + " bytes)";
  }
}
