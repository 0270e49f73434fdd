package io.mosaicrs.spark.jni;

/**
 * The dataset version asked for ({@code versionAsOf}, {@code timestampAsOf})
 * is not kept: it was never committed, or {@code vacuum} removed it. The
 * message names the version and the oldest one kept.
 */
public class MosaicrsVersionNotFoundException extends MosaicrsIOException {
  private static final long serialVersionUID = 1L;

  public MosaicrsVersionNotFoundException(String message) {
    super(message);
  }
}
