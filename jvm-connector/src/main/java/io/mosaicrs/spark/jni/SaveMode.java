package io.mosaicrs.spark.jni;

import java.util.Locale;

/**
 * What a commit does when the location already holds a dataset. Crosses the
 * JNI boundary by constant name; the native library's table of constants
 * ({@link NativeBridge#contractTable}) lists the same names in this order.
 */
public enum SaveMode {
  /** Fail: the dataset exists (Spark's default). */
  ERROR_IF_EXISTS,
  /** Add the new shards to the dataset; the schemas must match. */
  APPEND,
  /** Replace the dataset's shards with the new ones. */
  OVERWRITE,
  /** Leave an existing dataset as it is and drop the new shards. */
  IGNORE;

  /** The mode's name as Spark users write it: {@code errorifexists}, {@code append}, ... */
  public String sparkName() {
    return name().replace("_", "").toLowerCase(Locale.ROOT);
  }
}
