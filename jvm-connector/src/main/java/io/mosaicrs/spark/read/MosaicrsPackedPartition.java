package io.mosaicrs.spark.read;

import org.apache.spark.sql.connector.read.InputPartition;

/**
 * What one Spark task reads: several pieces (whole small shards, or ranges
 * of record batches of a large one), read one after the other. Built by
 * {@link PartitionPacking} as Spark's file sources pack small files.
 */
final class MosaicrsPackedPartition implements InputPartition {
  private static final long serialVersionUID = 1L;

  final MosaicrsInputPartition[] pieces;

  MosaicrsPackedPartition(MosaicrsInputPartition[] pieces) {
    this.pieces = pieces;
  }

  @Override
  public String toString() {
    long rows = 0;
    for (MosaicrsInputPartition piece : pieces) {
      rows += piece.rows;
    }
    return pieces.length + " pieces, " + rows + " rows, from " + (pieces.length == 0 ? "none" : pieces[0]);
  }
}
