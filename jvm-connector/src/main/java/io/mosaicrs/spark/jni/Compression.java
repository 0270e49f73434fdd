package io.mosaicrs.spark.jni;

/**
 * Arrow IPC buffer compression of a dataset's shards. Crosses the JNI
 * boundary by constant name; the native library's table of constants
 * ({@link NativeBridge#contractTable}) lists the same names in this order.
 */
public enum Compression {
  /** No compression: shards are read in place, without copies. */
  NONE,
  ZSTD,
  LZ4
}
