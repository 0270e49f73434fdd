package io.mosaicrs.spark.read;

import java.util.OptionalLong;

import io.mosaicrs.spark.jni.DatasetLocation;
import io.mosaicrs.spark.jni.MosaicrsIOException;
import io.mosaicrs.spark.jni.MosaicrsInvalidInputException;
import org.apache.spark.sql.connector.read.Batch;
import org.apache.spark.sql.connector.read.InputPartition;
import org.apache.spark.sql.connector.read.PartitionReaderFactory;
import org.apache.spark.sql.connector.read.Scan;
import org.apache.spark.sql.connector.read.Statistics;
import org.apache.spark.sql.connector.read.SupportsReportStatistics;
import org.apache.spark.sql.types.StructType;

/**
 * A batch scan of a mosaicrs dataset: one input partition per shard, or per
 * range of record batches of a shard larger than the partition size. The row
 * count and size come from the index.
 */
final class MosaicrsScan implements Scan, Batch, SupportsReportStatistics {
  private final DatasetLocation location;
  private final StructType readSchema;
  private final long partitionBytes;
  private Planned planned;

  /** The planned partitions with the index's totals. */
  private static final class Planned {
    final long totalRows;
    final long totalBytes;
    final InputPartition[] partitions;

    Planned(long totalRows, long totalBytes, InputPartition[] partitions) {
      this.totalRows = totalRows;
      this.totalBytes = totalBytes;
      this.partitions = partitions;
    }
  }

  MosaicrsScan(DatasetLocation location, StructType readSchema, long partitionBytes) {
    this.location = location;
    this.readSchema = readSchema;
    this.partitionBytes = partitionBytes;
  }

  private synchronized Planned plan() {
    if (planned == null) {
      Object[] result;
      try {
        result = NativeScan.planScan(location, partitionBytes);
      } catch (MosaicrsIOException e) {
        // Spark's planning interfaces declare no checked exceptions.
        throw new MosaicrsInvalidInputException(e.getMessage());
      }
      long[] totals = (long[]) result[0];
      String[] shards = (String[]) result[1];
      long[] ranges = (long[]) result[2];
      InputPartition[] partitions = new InputPartition[shards.length];
      for (int i = 0; i < shards.length; i++) {
        partitions[i] =
            new MosaicrsInputPartition(
                shards[i],
                Math.toIntExact(ranges[4 * i]),
                Math.toIntExact(ranges[4 * i + 1]),
                ranges[4 * i + 2]);
      }
      planned = new Planned(totals[0], totals[1], partitions);
    }
    return planned;
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
    return plan().partitions;
  }

  @Override
  public PartitionReaderFactory createReaderFactory() {
    return new MosaicrsReaderFactory(location, readSchema);
  }

  @Override
  public Statistics estimateStatistics() {
    Planned p = plan();
    return new Statistics() {
      @Override
      public OptionalLong sizeInBytes() {
        return OptionalLong.of(Math.max(1, p.totalBytes));
      }

      @Override
      public OptionalLong numRows() {
        return OptionalLong.of(p.totalRows);
      }
    };
  }
}
