package io.mosaicrs.spark.read;

import io.mosaicrs.spark.jni.DatasetLocation;
import io.mosaicrs.spark.jni.MosaicrsIOException;
import io.mosaicrs.spark.jni.NativeLoader;
import io.mosaicrs.spark.jni.ShardEntry;

/**
 * The JNI calls of the read path, implemented in {@code read_exports.rs} of
 * the native library.
 *
 * <p>No Arrow Java is used: {@link #nextBatch} hands over each column's Arrow
 * buffers as direct {@link java.nio.ByteBuffer}s over native memory (the
 * mapped shard itself when it is uncompressed), which {@link ArrowBufferVectors}
 * reads. Errors arrive as the exceptions of {@code io.mosaicrs.spark.jni}.
 *
 * <p>A scan handle owns a native object: pass it to {@link #closeScan} once.
 */
public final class NativeScan {
  static {
    NativeLoader.load();
  }

  /**
   * Longs per column node in {@link #nextBatch}'s metadata, after the row count
   * ({@code scan.nodeStride} in {@link io.mosaicrs.spark.jni.NativeBridge#contractTable}).
   */
  static final int NODE_STRIDE = 5;
  /**
   * Buffers per column node: validity, then up to two data buffers ({@code
   * scan.bufferStride} in {@link io.mosaicrs.spark.jni.NativeBridge#contractTable}).
   */
  static final int BUFFER_STRIDE = 3;

  private NativeScan() {}

  /**
   * Reads the index of one version of the dataset once and plans its scan
   * partitions (ranges of record batches of one shard, about {@code
   * targetPartitionBytes} each). The version: {@code version} when it is 0 or
   * more, else the newest committed at or before {@code asOfMs} (milliseconds
   * since the epoch) when that is 0 or more, else the newest.
   */
  static native ScanDescription describe(
      DatasetLocation location, long targetPartitionBytes, long version, long asOfMs)
      throws MosaicrsIOException;

  /**
   * Opens batches {@code firstBatch..endBatch} of {@code shard} (its index
   * entry, from the driver's plan) in a dataset of Arrow schema {@code
   * arrowSchema}, reading {@code columns}. A remote shard is read whole into
   * memory and its checksum verified.
   */
  static native long openScan(
      DatasetLocation location,
      String arrowSchema,
      ShardEntry shard,
      int firstBatch,
      int endBatch,
      String[] columns)
      throws MosaicrsIOException;

  /**
   * The next batch: {@code {long[] meta, ByteBuffer[] buffers}}, or null at the end.
   * {@code meta[0]} is the row count, then {@link #NODE_STRIDE} values per column
   * node (depth-first): length, null count, validity bit offset, values bit
   * offset, data address. {@code buffers} holds {@link #BUFFER_STRIDE} per node:
   * validity (null when there are no nulls), buffer 1, buffer 2. The previous
   * batch's buffers are invalid once this is called.
   */
  static native Object[] nextBatch(long scan) throws MosaicrsIOException;

  /** Parses a byte size such as {@code 67108864}, {@code 64m} or {@code 1g}. */
  static native long parseSize(String text);

  /** Frees the scan; the handle must not be used again. A handle of 0 is ignored. */
  static native void closeScan(long scan);
}
