package io.mosaicrs.spark.read;

import io.mosaicrs.spark.jni.ShardEntry;
import org.apache.spark.sql.connector.read.InputPartition;

/**
 * A range of record batches of one shard: what one Spark task reads. It
 * carries the shard's index entry (name, size, checksum), so the task opens
 * the shard without reading the index.
 */
final class MosaicrsInputPartition implements InputPartition {
  private static final long serialVersionUID = 2L;

  final ShardEntry shard;
  final int firstBatch;
  final int endBatch;
  final long rows;

  MosaicrsInputPartition(ShardEntry shard, int firstBatch, int endBatch, long rows) {
    this.shard = shard;
    this.firstBatch = firstBatch;
    this.endBatch = endBatch;
    this.rows = rows;
  }

  @Override
  public String toString() {
    return shard.path + "[batches " + firstBatch + ".." + endBatch + ", " + rows + " rows]";
  }
}
