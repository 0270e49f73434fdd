package io.mosaicrs.spark.jni;

/** What the driver's commit did ({@link NativeBridge#commit}). */
public final class CommitOutcome {
  /** False when save mode ignore found a dataset and changed nothing. */
  public final boolean committed;

  /** Rows in the dataset after the commit. */
  public final long totalRows;

  /** Files deleted afterwards: replaced shards and leftovers of failed attempts. */
  public final String[] removed;

  public CommitOutcome(boolean committed, long totalRows, String[] removed) {
    this.committed = committed;
    this.totalRows = totalRows;
    this.removed = removed;
  }

  @Override
  public String toString() {
    return "committed=" + committed + " total_rows=" + totalRows + " removed=" + removed.length;
  }
}
