package io.mosaicrs.spark.read;

import io.mosaicrs.spark.jni.DatasetLocation;

import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.connector.read.InputPartition;
import org.apache.spark.sql.connector.read.PartitionReader;
import org.apache.spark.sql.connector.read.PartitionReaderFactory;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.vectorized.ColumnarBatch;

/** Creates the columnar readers on the executors; it travels to them serialized. */
final class MosaicrsReaderFactory implements PartitionReaderFactory {
  private static final long serialVersionUID = 1L;

  private final DatasetLocation location;
  /** The dataset's Arrow schema (base64 IPC), as the driver read it from the index. */
  private final String arrowSchema;
  private final StructType readSchema;

  MosaicrsReaderFactory(DatasetLocation location, String arrowSchema, StructType readSchema) {
    this.location = location;
    this.arrowSchema = arrowSchema;
    this.readSchema = readSchema;
  }

  @Override
  public boolean supportColumnarReads(InputPartition partition) {
    return true;
  }

  @Override
  public PartitionReader<ColumnarBatch> createColumnarReader(InputPartition partition) {
    if (partition instanceof MosaicrsPackedPartition) {
      return new PackedPartitionReader(
          location, arrowSchema, readSchema, (MosaicrsPackedPartition) partition);
    }
    return new MosaicrsPartitionReader(
        location, arrowSchema, readSchema, (MosaicrsInputPartition) partition);
  }

  @Override
  public PartitionReader<InternalRow> createReader(InputPartition partition) {
    // Spark asks for rows only when supportColumnarReads says false.
    throw new UnsupportedOperationException("mosaicrs scans are columnar only");
  }
}
