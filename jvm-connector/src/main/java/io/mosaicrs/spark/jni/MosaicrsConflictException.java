package io.mosaicrs.spark.jni;

/**
 * Another writer changed the dataset between this write's start and its
 * commit, and the commit could not be applied on top of that change (an
 * overwrite, or a create that found a dataset). This write left no files
 * behind; run it again against the new dataset.
 */
public class MosaicrsConflictException extends MosaicrsIOException {
  private static final long serialVersionUID = 1L;

  public MosaicrsConflictException(String message) {
    super(message);
  }
}
