package io.mosaicrs.spark.jni;

import java.io.IOException;

/**
 * A file is missing, unreadable or corrupt, or the OS refused an operation.
 * Thrown by the native library for errors of category {@code Io}; the message
 * names the file.
 */
public class MosaicrsIOException extends IOException {
  private static final long serialVersionUID = 1L;

  public MosaicrsIOException(String message) {
    super(message);
  }
}
