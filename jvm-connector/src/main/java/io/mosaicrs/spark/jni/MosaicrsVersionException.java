package io.mosaicrs.spark.jni;

/**
 * The connector jar was built for another Spark line or Scala version than
 * the one running; the message names both and the jar to use.
 */
public class MosaicrsVersionException extends IllegalStateException {
  private static final long serialVersionUID = 1L;

  public MosaicrsVersionException(String message) {
    super(message);
  }
}
