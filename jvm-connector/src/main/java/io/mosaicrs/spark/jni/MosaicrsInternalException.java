package io.mosaicrs.spark.jni;

/**
 * A bug in mosaicrs or the connector: a broken invariant, a failed JNI call,
 * a panic in native code (caught before it reached the JVM), or a native
 * library that cannot be loaded.
 */
public class MosaicrsInternalException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public MosaicrsInternalException(String message) {
    super(message);
  }

  public MosaicrsInternalException(String message, Throwable cause) {
    super(message, cause);
  }
}
