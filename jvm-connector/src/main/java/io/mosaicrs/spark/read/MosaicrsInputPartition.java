package io.mosaicrs.spark.read;

import org.apache.spark.sql.connector.read.InputPartition;

/** A range of record batches of one shard: what one Spark task reads. */
final class MosaicrsInputPartition implements InputPartition {
  private static final long serialVersionUID = 1L;

  final String shard;
  final int firstBatch;
  final int endBatch;
  final long rows;

  MosaicrsInputPartition(String shard, int firstBatch, int endBatch, long rows) {
    this.shard = shard;
    this.firstBatch = firstBatch;
    this.endBatch = endBatch;
    this.rows = rows;
  }

  @Override
  public String toString() {
    return shard + "[batches " + firstBatch + ".." + endBatch + ", " + rows + " rows]";
  }
}
