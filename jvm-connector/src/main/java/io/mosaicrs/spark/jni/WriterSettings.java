package io.mosaicrs.spark.jni;

import java.io.Serializable;
import java.util.Objects;

/**
 * The writer options of a save, checked once on the driver by {@link
 * NativeBridge#parseWriterOptions} and applied by every task's writer
 * ({@link NativeBridge#openWriter}). Built by the native library; it travels
 * to the executors inside the write job.
 */
public final class WriterSettings implements Serializable {
  private static final long serialVersionUID = 1L;

  /** A shard is sealed once it holds this many bytes (positive). */
  public final long shardBytes;

  /** Rows per record batch, from the JVM to Rust and in the shards (positive). */
  public final int batchRows;

  /** Arrow IPC buffer compression of the shards. */
  public final Compression compression;

  /** Whether an append may add nullable columns ({@code mergeSchema}); read by the driver. */
  public final boolean mergeSchema;

  public WriterSettings(
      long shardBytes, int batchRows, Compression compression, boolean mergeSchema) {
    this.shardBytes = shardBytes;
    this.batchRows = batchRows;
    this.compression = Objects.requireNonNull(compression, "compression");
    this.mergeSchema = mergeSchema;
  }

  /** Settings of a write that adds no columns. */
  public WriterSettings(long shardBytes, int batchRows, Compression compression) {
    this(shardBytes, batchRows, compression, false);
  }

  @Override
  public boolean equals(Object other) {
    if (!(other instanceof WriterSettings)) {
      return false;
    }
    WriterSettings that = (WriterSettings) other;
    return shardBytes == that.shardBytes
        && batchRows == that.batchRows
        && compression == that.compression
        && mergeSchema == that.mergeSchema;
  }

  @Override
  public int hashCode() {
    return Objects.hash(shardBytes, batchRows, compression, mergeSchema);
  }

  @Override
  public String toString() {
    return "shardBytes=" + shardBytes + " batchRows=" + batchRows + " compression=" + compression
        + " mergeSchema=" + mergeSchema;
  }
}
