package io.mosaicrs.spark.jni;

/**
 * The caller's input is wrong: an option, a schema, a save-mode conflict.
 * Thrown by the native library for errors of category {@code InvalidInput},
 * and by the connector for bad options. The message names what to fix.
 */
public class MosaicrsInvalidInputException extends IllegalArgumentException {
  private static final long serialVersionUID = 1L;

  public MosaicrsInvalidInputException(String message) {
    super(message);
  }

  public MosaicrsInvalidInputException(String message, Throwable cause) {
    super(message, cause);
  }
}
