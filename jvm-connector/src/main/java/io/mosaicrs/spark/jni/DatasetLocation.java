package io.mosaicrs.spark.jni;

import java.io.Serializable;
import java.util.Arrays;
import java.util.Map;
import java.util.TreeMap;

/**
 * Where a dataset lives: an absolute local path, or an object-store URL
 * ({@code s3://}, {@code gs://}, {@code az://}, {@code abfss://}, read-only
 * {@code https://}) with the storage options that configure its client.
 *
 * <p>It travels to the executors inside the write job and the scan's reader
 * factory, and crosses JNI as this object: the native library reads the
 * fields {@code url}, {@code keys} and {@code values} by name. The option
 * values may be secrets, so {@link #toString} prints the URL and the option
 * keys only.
 */
public final class DatasetLocation implements Serializable {
  private static final long serialVersionUID = 1L;

  private final String url;
  private final String[] keys;
  private final String[] values;

  /**
   * @param url an absolute local path or a URL
   * @param storageOptions object-store options by their {@code object_store} names
   *     (for example {@code aws_endpoint}), without the {@code storage.} prefix
   */
  public DatasetLocation(String url, Map<String, String> storageOptions) {
    this.url = url;
    TreeMap<String, String> sorted = new TreeMap<>(storageOptions);
    this.keys = sorted.keySet().toArray(new String[0]);
    this.values = sorted.values().toArray(new String[0]);
  }

  /** The local path or URL (it carries no credentials: they are storage options). */
  public String url() {
    return url;
  }

  @Override
  public String toString() {
    return keys.length == 0 ? url : url + " (storage options " + String.join(", ", keys) + ")";
  }

  @Override
  public boolean equals(Object other) {
    if (!(other instanceof DatasetLocation)) {
      return false;
    }
    DatasetLocation that = (DatasetLocation) other;
    return url.equals(that.url) && Arrays.equals(keys, that.keys) && Arrays.equals(values, that.values);
  }

  @Override
  public int hashCode() {
    return 31 * url.hashCode() + Arrays.hashCode(keys);
  }
}
