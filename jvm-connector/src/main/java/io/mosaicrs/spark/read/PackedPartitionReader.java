package io.mosaicrs.spark.read;

import java.io.IOException;

import io.mosaicrs.spark.jni.DatasetLocation;
import org.apache.spark.sql.connector.read.PartitionReader;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.vectorized.ColumnarBatch;

/**
 * Reads the pieces of a {@link MosaicrsPackedPartition} in order, one native
 * scan at a time: a piece's scan is closed before the next one opens, so a
 * task holds one open shard whatever the number of pieces.
 */
final class PackedPartitionReader implements PartitionReader<ColumnarBatch> {
  private final DatasetLocation location;
  private final String arrowSchema;
  private final StructType schema;
  private final MosaicrsInputPartition[] pieces;
  private int next;
  private MosaicrsPartitionReader current;

  PackedPartitionReader(
      DatasetLocation location, String arrowSchema, StructType schema, MosaicrsPackedPartition partition) {
    this.location = location;
    this.arrowSchema = arrowSchema;
    this.schema = schema;
    this.pieces = partition.pieces;
  }

  @Override
  public synchronized boolean next() throws IOException {
    while (true) {
      if (current != null) {
        if (current.next()) {
          return true;
        }
        current.close();
        current = null;
      }
      if (next >= pieces.length) {
        return false;
      }
      current = new MosaicrsPartitionReader(location, arrowSchema, schema, pieces[next++]);
    }
  }

  @Override
  public synchronized ColumnarBatch get() {
    return current == null ? null : current.get();
  }

  @Override
  public synchronized void close() {
    next = pieces.length;
    if (current != null) {
      current.close();
      current = null;
    }
  }
}
