package io.mosaicrs.spark.jni;

/**
 * The JVM side of the JNI boundary: every call into the mosaicrs native
 * library goes through these static methods, implemented by the Rust crate
 * {@code mosaicrs-jni} (jvm-connector/native).
 *
 * <p>Errors arrive as {@link MosaicrsInvalidInputException} (bad input),
 * {@link MosaicrsIOException} (files, OS) or {@link MosaicrsInternalException}
 * (bugs, including a panic in native code), each carrying the Rust message.
 *
 * <p>A writer handle is a {@code long} that owns a native object. It must be
 * passed to exactly one of {@link #finishWriter} or {@link #abortWriter},
 * after which it is invalid; {@code io.mosaicrs.spark.NativeShardWriter}
 * enforces that. Schemas travel as base64 of an Arrow IPC schema stream, the
 * encoding the dataset index uses.
 */
public final class NativeBridge {
  static {
    NativeLoader.load();
  }

  private NativeBridge() {}

  /**
   * Starts the writer of one task attempt; shard names contain the write id,
   * the partition and the attempt, so attempts never share a file.
   *
   * @return a handle for {@link #writeBatch}, {@link #finishWriter}, {@link #abortWriter}
   */
  public static native long openWriter(
      String dir,
      String schemaBase64,
      String writeId,
      int partition,
      long taskAttempt,
      long maxShardBytes,
      int maxBatchRows,
      String compression)
      throws MosaicrsIOException;

  /**
   * Writes one record batch exported with {@code org.apache.arrow.c.Data}:
   * the addresses of an {@code ArrowArray} and an {@code ArrowSchema} holding
   * a struct whose children are the columns. Native code takes ownership of
   * both structs and releases the buffers before returning.
   */
  public static native void writeBatch(long writer, long arrowArrayAddress, long arrowSchemaAddress)
      throws MosaicrsIOException;

  /**
   * Seals the task's shards (nothing is visible until {@link #commit}).
   * Consumes the handle.
   *
   * @return the shard entries as a JSON array, the task's commit message
   */
  public static native String finishWriter(long writer) throws MosaicrsIOException;

  /** Deletes every file the task attempt wrote. Consumes the handle. */
  public static native void abortWriter(long writer) throws MosaicrsIOException;

  /**
   * Makes the shards of every committed task visible in one atomic index write,
   * applying the save mode ({@code errorifexists}, {@code append},
   * {@code overwrite}, {@code ignore}), and deletes files of the write that the
   * index does not list.
   *
   * @param shardLists one JSON array per committed task, from {@link #finishWriter}
   * @return JSON {@code {"committed": bool, "total_rows": n, "removed": [..]}}
   */
  public static native String commit(
      String dir, String schemaBase64, String writeId, String[] shardLists, String saveMode)
      throws MosaicrsIOException;

  /**
   * Job abort: deletes every file of the write that the index does not list.
   *
   * @return the deleted file names as a JSON array
   */
  public static native String abortWrite(String dir, String writeId) throws MosaicrsIOException;

  /** Fails if the dataset in {@code dir} exists with a different schema. */
  public static native void checkAppendSchema(String dir, String schemaBase64)
      throws MosaicrsIOException;

  /** True when {@code dir} holds a committed dataset (an index). */
  public static native boolean datasetExists(String dir);

  /** Parses a byte size such as {@code 67108864}, {@code 64m} or {@code 1g}. */
  public static native long parseByteSize(String text);

  /** Checks writer options with the rules the native writer applies. */
  public static native void validateWriterOptions(
      long maxShardBytes, int maxBatchRows, String compression);
}
