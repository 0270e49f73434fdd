package io.mosaicrs.spark.jni;

/**
 * The JVM side of the JNI boundary: every call into the mosaicrs native
 * library goes through these static methods, implemented by the Rust crate
 * {@code mosaicrs-jni} (jvm-connector/native).
 *
 * <p>Errors arrive as {@link MosaicrsInvalidInputException} (bad input),
 * {@link MosaicrsIOException} (files, OS; {@link MosaicrsConflictException}
 * for a lost commit race) or {@link MosaicrsInternalException} (bugs,
 * including a panic in native code, with its Rust backtrace), each carrying
 * the Rust message.
 *
 * <p>Typed values cross the boundary: objects of this package's classes
 * ({@link ShardEntry}, {@link WriterSettings}, {@link CommitOutcome}, ...),
 * built by a constructor call or read field by field, and the enums {@link
 * SaveMode} and {@link Compression}, by constant name. The kinds, ordinals and
 * strides that both sides number are in one native table, {@link
 * #contractTable}, which the connector's tests hold its constants against. A writer
 * handle is a {@code long} that owns a native object. It must be passed to
 * exactly one of {@link #finishWriter} or {@link #abortWriter}, after which
 * it is invalid; {@code io.mosaicrs.spark.NativeShardWriter} enforces that.
 * Schemas travel as base64 of an Arrow IPC schema stream, the encoding the
 * dataset index uses, built by {@link #arrowSchema}.
 */
public final class NativeBridge {
  static {
    NativeLoader.load();
  }

  private NativeBridge() {}

  /**
   * The native library's table of the constants both sides use, one {@code
   * group.NAME=value} line each: the type codes of {@code
   * io.mosaicrs.spark.SparkKind} ({@code kind.Null=0}, ...), the order of
   * {@link Compression} and {@link SaveMode} ({@code compression.ZSTD=1},
   * {@code saveMode.APPEND=1}, ...), the strides of a scan batch's metadata
   * ({@code scan.nodeStride=5}, {@code scan.bufferStride=3}), and the exception
   * class of each error category ({@code
   * exception.Io=io/mosaicrs/spark/jni/MosaicrsIOException}, ...).
   */
  public static native String[] contractTable();

  /**
   * The dataset's Arrow schema (base64 IPC) from a typed description of the
   * Spark schema: one entry per type node in pre-order, {@code kinds} from
   * {@code io.mosaicrs.spark.SparkKind}, {@code a}/{@code b} its parameters
   * (decimal precision and scale, struct field count), {@code names} the
   * field names.
   */
  public static native String arrowSchema(int[] kinds, int[] a, int[] b, String[] names);

  /**
   * Checks every writer option the user set in one call, matching keys
   * case-insensitively.
   *
   * @return the settings every task's writer applies (rows per batch defaulted
   *     for the compression when not given)
   * @throws MosaicrsInvalidInputException naming the first unknown option or bad value
   */
  public static native WriterSettings parseWriterOptions(String[] keys, String[] values);

  /**
   * The dataset's Arrow schema (base64 IPC) for rows of {@code schemaBase64}
   * stored under the column layout options ({@code pack.<name>},
   * {@code fixedLength.<column>}).
   *
   * @throws MosaicrsInvalidInputException naming the column or option the layout cannot apply to
   */
  public static native String storedSchema(
      String schemaBase64, String[] layoutKeys, String[] layoutValues);

  /**
   * Starts the writer of one task attempt; shard names contain the write id,
   * the partition and the attempt, so attempts never share a file. On an
   * object store the shards stream straight to the store. Batches arrive with
   * {@code schemaBase64}; the layout options say how the shards store them.
   *
   * @return a handle for {@link #writeColumns}, {@link #finishWriter}, {@link #abortWriter}
   */
  public static native long openWriter(
      DatasetLocation location,
      String schemaBase64,
      String writeId,
      int partition,
      long taskAttempt,
      WriterSettings settings,
      String[] layoutKeys,
      String[] layoutValues)
      throws MosaicrsIOException;

  /**
   * Writes one batch of {@code rows} rows laid out as Arrow buffers in
   * little-endian byte arrays: {@code nodeLengths} holds every type node's
   * length and {@code buffers} (with {@code bufferLengths} bytes used of each)
   * every node's buffers, both in pre-order of the schema. The native side
   * copies and validates them before it returns, so the arrays may be reused.
   */
  public static native void writeColumns(
      long writer, int rows, int[] nodeLengths, byte[][] buffers, int[] bufferLengths)
      throws MosaicrsIOException;

  /**
   * Seals the task's shards (nothing is visible until {@link #commit}).
   * Consumes the handle.
   *
   * @return the shard entries, the task's commit message
   */
  public static native ShardEntry[] finishWriter(long writer) throws MosaicrsIOException;

  /**
   * Deletes every file the task attempt wrote. Consumes the handle; a handle
   * of 0 (already finished or aborted) is ignored.
   */
  public static native void abortWriter(long writer) throws MosaicrsIOException;

  /**
   * Makes the shards of every committed task visible in one atomic index write,
   * applying the save mode, and deletes files
   * of the write that the index does not list. The index write is a
   * compare-and-swap: a lost race throws {@link MosaicrsConflictException}.
   * With {@code mergeSchema} an append may add nullable columns.
   */
  public static CommitOutcome commit(
      DatasetLocation location,
      String schemaBase64,
      String writeId,
      ShardEntry[] shards,
      SaveMode saveMode,
      boolean mergeSchema)
      throws MosaicrsIOException {
    String[] none = new String[0];
    return commitWith(location, schemaBase64, writeId, shards, saveMode,
        new String[] {"mergeSchema"}, new String[] {Boolean.toString(mergeSchema)}, none, none);
  }

  /**
   * {@link #commit}, recording with the commit the writer ({@code writerKeys}
   * / {@code writerValues}: the engine, Spark's application id and query) and
   * what the write options ask of a commit ({@code metadata.<key>}).
   */
  public static native CommitOutcome commitWith(
      DatasetLocation location,
      String schemaBase64,
      String writeId,
      ShardEntry[] shards,
      SaveMode saveMode,
      String[] optionKeys,
      String[] optionValues,
      String[] writerKeys,
      String[] writerValues)
      throws MosaicrsIOException;

  /**
   * Job abort: deletes every file of the write that the index does not list.
   *
   * @return the deleted file names
   */
  public static native String[] abortWrite(DatasetLocation location, String writeId)
      throws MosaicrsIOException;

  /**
   * Fails if the dataset at {@code location} exists with a different schema
   * (with {@code mergeSchema}: one that the rows' schema does not extend by
   * nullable columns).
   */
  public static native void checkAppendSchema(
      DatasetLocation location, String schemaBase64, boolean mergeSchema)
      throws MosaicrsIOException;

  /**
   * True when {@code location} holds a committed dataset (an index). Throws
   * when the store cannot be asked (credentials, network) rather than guess.
   */
  public static native boolean datasetExists(DatasetLocation location)
      throws MosaicrsIOException;
}
