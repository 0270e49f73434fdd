package io.mosaicrs.spark.read;

import java.util.ArrayList;
import java.util.List;

import io.mosaicrs.spark.jni.MosaicrsInvalidInputException;
import org.apache.spark.SparkContext;
import org.apache.spark.sql.RuntimeConfig;
import org.apache.spark.sql.SparkSession;
import scala.Option;

/**
 * Packs scan pieces (whole shards, or batch ranges of a large one) into
 * input partitions the way Spark's file sources pack files: a partition
 * takes pieces until it would exceed the split size, each piece counting its
 * bytes plus {@code spark.sql.files.openCostInBytes}. The split size is
 * Spark's: {@code min(maxPartitionBytes, max(openCostInBytes, bytesPerCore))},
 * where {@code bytesPerCore} spreads the dataset over {@code
 * spark.sql.files.minPartitionNum} (default: the session's default
 * parallelism), so a small dataset still keeps every core busy.
 *
 * <p>Unlike Spark, pieces keep the index's order (next fit, not sorted by
 * size): a scan of a packed dataset returns its rows in the dataset's order,
 * and adjacent pieces of one shard become one range.
 */
final class PartitionPacking {
  static final String MAX_PARTITION_BYTES = "spark.sql.files.maxPartitionBytes";
  static final String OPEN_COST_IN_BYTES = "spark.sql.files.openCostInBytes";
  static final String MIN_PARTITION_NUM = "spark.sql.files.minPartitionNum";
  static final String LEAF_NODE_PARALLELISM = "spark.sql.leafNodeDefaultParallelism";

  private PartitionPacking() {}

  /**
   * The input partitions of {@code pieces} under the running session's
   * settings; {@code maxPartitionBytes}, when positive (the read's {@code
   * partitionSize}), replaces {@code spark.sql.files.maxPartitionBytes}.
   */
  static MosaicrsPackedPartition[] plan(MosaicrsInputPartition[] pieces, long maxPartitionBytes) {
    RuntimeConfig conf = SparkSession.active().conf();
    long maxBytes = maxPartitionBytes > 0 ? maxPartitionBytes : bytes(conf, MAX_PARTITION_BYTES, "128m");
    long openCost = bytes(conf, OPEN_COST_IN_BYTES, "4m");
    int minPartitions = positiveInt(conf, MIN_PARTITION_NUM);
    if (minPartitions <= 0) {
      minPartitions = positiveInt(conf, LEAF_NODE_PARALLELISM);
    }
    if (minPartitions <= 0) {
      minPartitions = SparkContext.getOrCreate().defaultParallelism();
    }
    return pack(pieces, splitBytes(pieces, maxBytes, openCost, minPartitions), openCost);
  }

  /** Spark's split size ({@code FilePartition.maxSplitBytes}) for these pieces. */
  static long splitBytes(MosaicrsInputPartition[] pieces, long maxBytes, long openCost, int minPartitions) {
    long total = 0;
    for (MosaicrsInputPartition piece : pieces) {
      total = saturatingAdd(total, saturatingAdd(bytes(piece), openCost));
    }
    long perCore = total / Math.max(1, minPartitions);
    return Math.min(maxBytes, Math.max(openCost, perCore));
  }

  /** Next fit: a partition is closed when the next piece would take it past {@code splitBytes}. */
  static MosaicrsPackedPartition[] pack(MosaicrsInputPartition[] pieces, long splitBytes, long openCost) {
    List<MosaicrsPackedPartition> partitions = new ArrayList<>();
    List<MosaicrsInputPartition> current = new ArrayList<>();
    long size = 0;
    for (MosaicrsInputPartition piece : pieces) {
      long bytes = bytes(piece);
      if (!current.isEmpty() && saturatingAdd(size, bytes) > splitBytes) {
        partitions.add(new MosaicrsPackedPartition(current.toArray(new MosaicrsInputPartition[0])));
        current.clear();
        size = 0;
      }
      size = saturatingAdd(size, saturatingAdd(bytes, openCost));
      int last = current.size() - 1;
      if (last >= 0 && follows(current.get(last), piece)) {
        MosaicrsInputPartition before = current.get(last);
        current.set(
            last,
            new MosaicrsInputPartition(
                before.shard, before.firstBatch, piece.endBatch, before.rows + piece.rows));
      } else {
        current.add(piece);
      }
    }
    if (!current.isEmpty()) {
      partitions.add(new MosaicrsPackedPartition(current.toArray(new MosaicrsInputPartition[0])));
    }
    return partitions.toArray(new MosaicrsPackedPartition[0]);
  }

  /** True when {@code piece} starts where {@code before} ends, in the same shard. */
  private static boolean follows(MosaicrsInputPartition before, MosaicrsInputPartition piece) {
    return before.shard.path.equals(piece.shard.path) && before.endBatch == piece.firstBatch;
  }

  /** A piece's share of its shard's bytes, by rows (batches of a shard are alike in width). */
  static long bytes(MosaicrsInputPartition piece) {
    long shardRows = piece.shard.rows;
    if (shardRows <= 0 || piece.rows >= shardRows) {
      return piece.shard.bytes;
    }
    return (long) ((double) piece.shard.bytes * piece.rows / shardRows);
  }

  private static long saturatingAdd(long a, long b) {
    long sum = a + b;
    return ((a ^ sum) & (b ^ sum)) < 0 ? Long.MAX_VALUE : sum;
  }

  private static long bytes(RuntimeConfig conf, String key, String fallback) {
    Option<String> set = conf.getOption(key);
    String text = set.isDefined() ? set.get() : fallback;
    long value;
    try {
      value = NativeScan.parseSize(text);
    } catch (IllegalArgumentException e) {
      throw new MosaicrsInvalidInputException(
          "invalid value '" + text + "' for " + key + " (the mosaicrs scan packs shards by it): "
              + e.getMessage());
    }
    if (value < 0) {
      throw new MosaicrsInvalidInputException(
          "invalid value '" + text + "' for " + key + ": must not be negative");
    }
    return value;
  }

  /** The setting's value, or 0 when it is not set. */
  private static int positiveInt(RuntimeConfig conf, String key) {
    Option<String> set = conf.getOption(key);
    if (!set.isDefined()) {
      return 0;
    }
    try {
      return Math.max(0, Integer.parseInt(set.get().trim()));
    } catch (NumberFormatException e) {
      throw new MosaicrsInvalidInputException(
          "invalid value '" + set.get() + "' for " + key + ": not an integer");
    }
  }
}
