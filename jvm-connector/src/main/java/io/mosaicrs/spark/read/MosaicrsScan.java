package io.mosaicrs.spark.read;

import java.util.OptionalLong;

import io.mosaicrs.spark.jni.DatasetLocation;
import org.apache.spark.sql.connector.read.Batch;
import org.apache.spark.sql.connector.read.InputPartition;
import org.apache.spark.sql.connector.read.PartitionReaderFactory;
import org.apache.spark.sql.connector.read.Scan;
import org.apache.spark.sql.connector.read.Statistics;
import org.apache.spark.sql.connector.read.SupportsReportStatistics;
import org.apache.spark.sql.types.StructType;

/**
 * A batch scan of a mosaicrs dataset. Its pieces are whole shards, or ranges
 * of record batches of a shard larger than the partition size; small pieces
 * are packed into one input partition as Spark's file sources pack files
 * ({@link PartitionPacking}). The pieces, the row count and the size come
 * from the snapshot that the scan builder read.
 */
final class MosaicrsScan implements Scan, Batch, SupportsReportStatistics {
  private final DatasetLocation location;
  private final DatasetSnapshot snapshot;
  private final StructType readSchema;
  /** The read's {@code partitionSize} when it set one, else 0: Spark's {@code maxPartitionBytes}. */
  private final long packBytes;

  MosaicrsScan(DatasetLocation location, DatasetSnapshot snapshot, StructType readSchema) {
    this(location, snapshot, readSchema, 0);
  }

  MosaicrsScan(DatasetLocation location, DatasetSnapshot snapshot, StructType readSchema, long packBytes) {
    this.location = location;
    this.snapshot = snapshot;
    this.readSchema = readSchema;
    this.packBytes = packBytes;
  }

  @Override
  public StructType readSchema() {
    return readSchema;
  }

  @Override
  public String description() {
    return "mosaicrs " + location + " " + readSchema.simpleString();
  }

  @Override
  public Batch toBatch() {
    return this;
  }

  @Override
  public InputPartition[] planInputPartitions() {
    return PartitionPacking.plan(snapshot.partitions(), packBytes);
  }

  @Override
  public PartitionReaderFactory createReaderFactory() {
    return new MosaicrsReaderFactory(location, snapshot.arrowSchema(), readSchema);
  }

  @Override
  public Statistics estimateStatistics() {
    return new Statistics() {
      @Override
      public OptionalLong sizeInBytes() {
        return OptionalLong.of(Math.max(1, snapshot.totalBytes()));
      }

      @Override
      public OptionalLong numRows() {
        return OptionalLong.of(snapshot.totalRows());
      }
    };
  }
}
