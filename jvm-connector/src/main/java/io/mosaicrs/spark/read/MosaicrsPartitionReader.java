package io.mosaicrs.spark.read;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicLong;

import io.mosaicrs.spark.jni.DatasetLocation;

import org.apache.spark.TaskContext;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.vectorized.ColumnVector;
import org.apache.spark.sql.vectorized.ColumnarBatch;
import org.apache.spark.util.TaskCompletionListener;

/**
 * Reads one partition as {@link ColumnarBatch}es whose vectors are views of
 * the native batch's buffers. A batch stays valid until the next call to
 * {@link #next} or {@link #close}, as Spark's columnar contract allows.
 *
 * <p>The native scan is closed exactly once: by {@link #close}, or by the
 * task-completion listener if the task ends first (failure, kill, limit).
 */
final class MosaicrsPartitionReader
    implements org.apache.spark.sql.connector.read.PartitionReader<ColumnarBatch> {
  private final DatasetLocation location;
  private final String arrowSchema;
  private final StructType schema;
  private final MosaicrsInputPartition partition;
  private final String[] columns;
  /** The native scan; 0 before it opens and once it is closed. */
  private final AtomicLong handle = new AtomicLong();
  private boolean opened;
  private ColumnarBatch current;

  MosaicrsPartitionReader(
      DatasetLocation location,
      String arrowSchema,
      StructType schema,
      MosaicrsInputPartition partition) {
    this.location = location;
    this.arrowSchema = arrowSchema;
    this.schema = schema;
    this.partition = partition;
    this.columns = schema.fieldNames();
    TaskContext context = TaskContext.get();
    if (context != null) {
      context.addTaskCompletionListener(
          new TaskCompletionListener() {
            @Override
            public void onTaskCompletion(TaskContext ctx) {
              close();
            }
          });
    }
  }

  @Override
  public synchronized boolean next() throws IOException {
    if (!opened) {
      opened = true;
      handle.set(
          NativeScan.openScan(
              location,
              arrowSchema,
              partition.shard,
              partition.firstBatch,
              partition.endBatch,
              columns));
    }
    long scan = handle.get();
    current = null;
    if (scan == 0) {
      return false;
    }
    Object[] batch = NativeScan.nextBatch(scan);
    if (batch == null) {
      return false;
    }
    long[] meta = (long[]) batch[0];
    ByteBuffer[] buffers = (ByteBuffer[]) batch[1];
    ColumnVector[] vectors = ArrowBufferVectors.columns(schema, meta, buffers);
    current = new ColumnarBatch(vectors, Math.toIntExact(meta[0]));
    return true;
  }

  @Override
  public synchronized ColumnarBatch get() {
    return current;
  }

  @Override
  public synchronized void close() {
    opened = true;
    current = null;
    long scan = handle.getAndSet(0);
    if (scan != 0) {
      NativeScan.closeScan(scan);
    }
  }
}
