package io.mosaicrs.spark.read;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

import io.mosaicrs.spark.jni.DatasetLocation;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.GenericInternalRow;
import org.apache.spark.sql.connector.read.Batch;
import org.apache.spark.sql.connector.read.InputPartition;
import org.apache.spark.sql.connector.read.PartitionReader;
import org.apache.spark.sql.connector.read.PartitionReaderFactory;
import org.apache.spark.sql.connector.read.Scan;
import org.apache.spark.sql.types.BooleanType;
import org.apache.spark.sql.types.ByteType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.DateType;
import org.apache.spark.sql.types.DoubleType;
import org.apache.spark.sql.types.FloatType;
import org.apache.spark.sql.types.IntegerType;
import org.apache.spark.sql.types.LongType;
import org.apache.spark.sql.types.ShortType;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.types.TimestampNTZType;
import org.apache.spark.sql.types.TimestampType;
import org.apache.spark.sql.vectorized.ColumnVector;
import org.apache.spark.sql.vectorized.ColumnarBatch;

/**
 * Partial aggregates pushed down by Spark ({@code AggregatePushDown}): each
 * task reads its pieces' columns as the columnar scan does and folds them into
 * one row of {@code COUNT(*)}, {@code COUNT(col)}, {@code SUM(col)}, {@code
 * MIN(col)} and {@code MAX(col)} values; Spark's final aggregate combines the
 * tasks' rows. A sum runs over the values in row order, as Spark's own partial
 * aggregate of the task would.
 *
 * <p>{@code MIN} and {@code MAX} follow Spark's ordering: nulls are skipped
 * (no value gives null), NaN is above every other float or double (so a
 * {@code MAX} with a NaN is NaN, and a {@code MIN} is NaN only when every
 * value is), and {@code -0.0} equals {@code 0.0}, the first in row order
 * being kept, as Spark's partial aggregate keeps it.
 *
 * <p>Integral sums are exact: a task whose {@code bigint} sum overflows fails
 * with an {@link ArithmeticException} naming the column, in ANSI mode as in
 * legacy mode (where Spark would wrap around).
 */
final class MosaicrsAggregateScan implements Scan, Batch {
  /** {@code COUNT(*)}: the rows. */
  static final int COUNT_STAR = 0;
  /** {@code COUNT(col)}: the rows where the column is not null. */
  static final int COUNT = 1;
  /** {@code SUM(col)} of a byte, short, int, bigint, float or double column. */
  static final int SUM = 2;
  /** {@code MIN(col)} of a column of an {@link #ordered} type. */
  static final int MIN = 3;
  /** {@code MAX(col)} of a column of an {@link #ordered} type. */
  static final int MAX = 4;

  private final DatasetLocation location;
  private final DatasetSnapshot snapshot;
  private final long packBytes;
  private final int[] kinds;
  private final String[] columns;
  /** The columns read, each once. */
  private final StructType sourceSchema;
  /** Per aggregate: its column's ordinal in {@link #sourceSchema}; -1 for {@code COUNT(*)}. */
  private final int[] ordinals;
  private final DataType[] types;

  /**
   * @param tableSchema the table's columns; every name in {@code columns} is one of them
   * @param kinds per aggregate: {@link #COUNT_STAR}, {@link #COUNT}, {@link #SUM}, {@link
   *     #MIN} or {@link #MAX}
   * @param columns per aggregate: its column, null for {@code COUNT(*)}
   */
  MosaicrsAggregateScan(
      DatasetLocation location,
      DatasetSnapshot snapshot,
      long packBytes,
      StructType tableSchema,
      int[] kinds,
      String[] columns) {
    this.location = location;
    this.snapshot = snapshot;
    this.packBytes = packBytes;
    this.kinds = kinds.clone();
    this.columns = columns.clone();
    List<StructField> read = new ArrayList<>();
    List<String> readNames = new ArrayList<>();
    this.ordinals = new int[kinds.length];
    this.types = new DataType[kinds.length];
    for (int i = 0; i < kinds.length; i++) {
      if (kinds[i] == COUNT_STAR) {
        ordinals[i] = -1;
        continue;
      }
      StructField field = tableSchema.fields()[tableSchema.fieldIndex(columns[i])];
      int at = readNames.indexOf(field.name());
      if (at < 0) {
        at = read.size();
        read.add(field);
        readNames.add(field.name());
      }
      ordinals[i] = at;
      types[i] = field.dataType();
    }
    // The read keeps the table's column order, as a pruned columnar scan does.
    List<StructField> ordered = new ArrayList<>();
    for (StructField field : tableSchema.fields()) {
      if (readNames.contains(field.name())) {
        ordered.add(field);
      }
    }
    this.sourceSchema = new StructType(ordered.toArray(new StructField[0]));
    for (int i = 0; i < kinds.length; i++) {
      if (ordinals[i] >= 0) {
        ordinals[i] = sourceSchema.fieldIndex(columns[i]);
      }
    }
  }

  /** Whether {@code SUM} of a column of this type is computed by the scan. */
  static boolean summable(DataType type) {
    return type instanceof ByteType
        || type instanceof ShortType
        || type instanceof IntegerType
        || type instanceof LongType
        || type instanceof FloatType
        || type instanceof DoubleType;
  }

  /**
   * Whether {@code MIN} and {@code MAX} of a column of this type are computed
   * by the scan: the types whose values the column vectors hand out as
   * primitives (Parquet pushes the same ones, and timestamps too here, which
   * are plain longs in a shard). Decimals and strings stay with Spark.
   */
  static boolean ordered(DataType type) {
    return summable(type)
        || type instanceof BooleanType
        || type instanceof DateType
        || type instanceof TimestampType
        || type instanceof TimestampNTZType;
  }

  private static boolean floating(DataType type) {
    return type instanceof FloatType || type instanceof DoubleType;
  }

  private String label(int i) {
    switch (kinds[i]) {
      case COUNT_STAR:
        return "COUNT(*)";
      case COUNT:
        return "COUNT(" + columns[i] + ")";
      case SUM:
        return "SUM(" + columns[i] + ")";
      case MIN:
        return "MIN(" + columns[i] + ")";
      default:
        return "MAX(" + columns[i] + ")";
    }
  }

  @Override
  public StructType readSchema() {
    // Spark matches these columns to the pushed aggregates by position: a
    // count is a bigint, an integral sum a bigint, a float sum a double and a
    // minimum or maximum the column's type, the types of Spark's own partial
    // aggregates.
    StructField[] fields = new StructField[kinds.length];
    for (int i = 0; i < kinds.length; i++) {
      boolean count = kinds[i] == COUNT_STAR || kinds[i] == COUNT;
      DataType type;
      if (count) {
        type = DataTypes.LongType;
      } else if (kinds[i] == SUM) {
        type = floating(types[i]) ? DataTypes.DoubleType : DataTypes.LongType;
      } else {
        type = types[i];
      }
      fields[i] = DataTypes.createStructField(label(i), type, !count);
    }
    return DataTypes.createStructType(fields);
  }

  @Override
  public String description() {
    List<String> labels = new ArrayList<>();
    for (int i = 0; i < kinds.length; i++) {
      labels.add(label(i));
    }
    return "mosaicrs " + location + " pushed partial aggregates " + String.join(", ", labels);
  }

  @Override
  public Batch toBatch() {
    return this;
  }

  @Override
  public InputPartition[] planInputPartitions() {
    MosaicrsPackedPartition[] planned = PartitionPacking.plan(snapshot.partitions(), packBytes);
    // An empty dataset still gives one row, so that Spark's sum of the
    // partial counts is 0, not null.
    return planned.length > 0
        ? planned
        : new InputPartition[] {new MosaicrsPackedPartition(new MosaicrsInputPartition[0])};
  }

  @Override
  public PartitionReaderFactory createReaderFactory() {
    return new Factory(location, snapshot.arrowSchema(), sourceSchema, kinds, columns, ordinals, types);
  }

  /** Creates the folding readers on the executors. */
  private static final class Factory implements PartitionReaderFactory {
    private static final long serialVersionUID = 1L;

    private final DatasetLocation location;
    private final String arrowSchema;
    private final StructType sourceSchema;
    private final int[] kinds;
    private final String[] columns;
    private final int[] ordinals;
    private final DataType[] types;

    Factory(
        DatasetLocation location,
        String arrowSchema,
        StructType sourceSchema,
        int[] kinds,
        String[] columns,
        int[] ordinals,
        DataType[] types) {
      this.location = location;
      this.arrowSchema = arrowSchema;
      this.sourceSchema = sourceSchema;
      this.kinds = kinds;
      this.columns = columns;
      this.ordinals = ordinals;
      this.types = types;
    }

    @Override
    public PartitionReader<InternalRow> createReader(InputPartition partition) {
      PartitionReader<ColumnarBatch> batches =
          partition instanceof MosaicrsPackedPartition
              ? new PackedPartitionReader(
                  location, arrowSchema, sourceSchema, (MosaicrsPackedPartition) partition)
              : new MosaicrsPartitionReader(
                  location, arrowSchema, sourceSchema, (MosaicrsInputPartition) partition);
      return new Folder(batches, kinds, columns, ordinals, types);
    }
  }

  /** Reads every batch of a partition and returns the one row of its partial aggregates. */
  private static final class Folder implements PartitionReader<InternalRow> {
    private final PartitionReader<ColumnarBatch> batches;
    private final int[] kinds;
    private final String[] columns;
    private final int[] ordinals;
    private final DataType[] types;
    private final long[] longs;
    private final double[] doubles;
    /**
     * Per sum, minimum or maximum: whether a non-null value was folded in
     * (else the aggregate is null, as Spark's).
     */
    private final boolean[] seen;
    private InternalRow row;

    Folder(
        PartitionReader<ColumnarBatch> batches,
        int[] kinds,
        String[] columns,
        int[] ordinals,
        DataType[] types) {
      this.batches = batches;
      this.kinds = kinds;
      this.columns = columns;
      this.ordinals = ordinals;
      this.types = types;
      this.longs = new long[kinds.length];
      this.doubles = new double[kinds.length];
      this.seen = new boolean[kinds.length];
      for (int i = 0; i < kinds.length; i++) {
        // The identities of the folds below. NaN starts a minimum: every
        // value but NaN is below it, and a minimum of only NaNs stays NaN.
        if (kinds[i] == MIN) {
          longs[i] = Long.MAX_VALUE;
          doubles[i] = Double.NaN;
        } else if (kinds[i] == MAX) {
          longs[i] = Long.MIN_VALUE;
          doubles[i] = Double.NEGATIVE_INFINITY;
        }
      }
    }

    @Override
    public boolean next() throws IOException {
      if (row != null) {
        return false;
      }
      while (batches.next()) {
        ColumnarBatch batch = batches.get();
        int rows = batch.numRows();
        for (int i = 0; i < kinds.length; i++) {
          if (kinds[i] == COUNT_STAR) {
            longs[i] += rows;
          } else if (kinds[i] == COUNT) {
            longs[i] += rows - batch.column(ordinals[i]).numNulls();
          } else if (kinds[i] == SUM) {
            add(i, batch.column(ordinals[i]), rows);
          } else {
            extreme(i, batch.column(ordinals[i]), rows, kinds[i] == MAX);
          }
        }
      }
      Object[] values = new Object[kinds.length];
      for (int i = 0; i < kinds.length; i++) {
        if (kinds[i] == COUNT_STAR || kinds[i] == COUNT) {
          values[i] = longs[i];
        } else if (!seen[i]) {
          values[i] = null;
        } else if (kinds[i] == SUM) {
          values[i] = floating(types[i]) ? (Object) doubles[i] : (Object) longs[i];
        } else {
          values[i] = extremeValue(i);
        }
      }
      row = new GenericInternalRow(values);
      return true;
    }

    /**
     * Adds a batch's non-null values to sum {@code i}. One loop per type keeps
     * each accessor call monomorphic and the values primitive; the JIT hoists
     * the invariant {@code nulls} test out of the loop.
     */
    private void add(int i, ColumnVector v, int rows) {
      boolean nulls = v.hasNull();
      DataType type = types[i];
      long s = longs[i];
      double d = doubles[i];
      int added = 0;
      try {
        if (type instanceof LongType) {
          for (int r = 0; r < rows; r++) {
            if (!nulls || !v.isNullAt(r)) {
              s = Math.addExact(s, v.getLong(r));
              added++;
            }
          }
        } else if (type instanceof IntegerType) {
          for (int r = 0; r < rows; r++) {
            if (!nulls || !v.isNullAt(r)) {
              s = Math.addExact(s, (long) v.getInt(r));
              added++;
            }
          }
        } else if (type instanceof ShortType) {
          for (int r = 0; r < rows; r++) {
            if (!nulls || !v.isNullAt(r)) {
              s = Math.addExact(s, (long) v.getShort(r));
              added++;
            }
          }
        } else if (type instanceof ByteType) {
          for (int r = 0; r < rows; r++) {
            if (!nulls || !v.isNullAt(r)) {
              s = Math.addExact(s, (long) v.getByte(r));
              added++;
            }
          }
        } else if (type instanceof FloatType) {
          for (int r = 0; r < rows; r++) {
            if (!nulls || !v.isNullAt(r)) {
              d += (double) v.getFloat(r);
              added++;
            }
          }
        } else {
          for (int r = 0; r < rows; r++) {
            if (!nulls || !v.isNullAt(r)) {
              d += v.getDouble(r);
              added++;
            }
          }
        }
      } catch (ArithmeticException e) {
        throw new ArithmeticException(
            "SUM(" + columns[i] + ") of a mosaicrs scan overflows a bigint; "
                + "cast the column to a decimal to sum it");
      }
      longs[i] = s;
      doubles[i] = d;
      seen[i] |= added > 0;
    }

    /**
     * Folds a batch's non-null values into minimum or maximum {@code i}, as
     * {@link #add} folds a sum. Integral values are widened to longs, floats
     * to doubles, which keeps their order, NaN and {@code -0.0}. A float
     * replaces the kept one only when strictly beyond it in Spark's order
     * (NaN above all), so of {@code -0.0} and {@code 0.0} the first stays.
     */
    private void extreme(int i, ColumnVector v, int rows, boolean max) {
      boolean nulls = v.hasNull();
      DataType type = types[i];
      long m = longs[i];
      double d = doubles[i];
      int folded = 0;
      if (type instanceof LongType
          || type instanceof TimestampType
          || type instanceof TimestampNTZType) {
        for (int r = 0; r < rows; r++) {
          if (!nulls || !v.isNullAt(r)) {
            long x = v.getLong(r);
            m = max ? Math.max(m, x) : Math.min(m, x);
            folded++;
          }
        }
      } else if (type instanceof IntegerType || type instanceof DateType) {
        for (int r = 0; r < rows; r++) {
          if (!nulls || !v.isNullAt(r)) {
            long x = v.getInt(r);
            m = max ? Math.max(m, x) : Math.min(m, x);
            folded++;
          }
        }
      } else if (type instanceof ShortType) {
        for (int r = 0; r < rows; r++) {
          if (!nulls || !v.isNullAt(r)) {
            long x = v.getShort(r);
            m = max ? Math.max(m, x) : Math.min(m, x);
            folded++;
          }
        }
      } else if (type instanceof ByteType) {
        for (int r = 0; r < rows; r++) {
          if (!nulls || !v.isNullAt(r)) {
            long x = v.getByte(r);
            m = max ? Math.max(m, x) : Math.min(m, x);
            folded++;
          }
        }
      } else if (type instanceof BooleanType) {
        for (int r = 0; r < rows; r++) {
          if (!nulls || !v.isNullAt(r)) {
            long x = v.getBoolean(r) ? 1 : 0;
            m = max ? Math.max(m, x) : Math.min(m, x);
            folded++;
          }
        }
      } else if (type instanceof FloatType) {
        for (int r = 0; r < rows; r++) {
          if (!nulls || !v.isNullAt(r)) {
            d = beyond((double) v.getFloat(r), d, max);
            folded++;
          }
        }
      } else {
        for (int r = 0; r < rows; r++) {
          if (!nulls || !v.isNullAt(r)) {
            d = beyond(v.getDouble(r), d, max);
            folded++;
          }
        }
      }
      longs[i] = m;
      doubles[i] = d;
      seen[i] |= folded > 0;
    }

    /**
     * {@code x} where it is strictly above (for a maximum) or below (for a
     * minimum) {@code kept} in Spark's order of doubles, else {@code kept}.
     */
    private static double beyond(double x, double kept, boolean max) {
      // x != x: x is NaN.
      if (max) {
        return x > kept || (x != x && kept == kept) ? x : kept;
      }
      return x < kept || (kept != kept && x == x) ? x : kept;
    }

    /** Minimum or maximum {@code i} as a value of its column's type. */
    private Object extremeValue(int i) {
      DataType type = types[i];
      if (type instanceof DoubleType) {
        return doubles[i];
      } else if (type instanceof FloatType) {
        return (float) doubles[i];
      } else if (type instanceof IntegerType || type instanceof DateType) {
        return (int) longs[i];
      } else if (type instanceof ShortType) {
        return (short) longs[i];
      } else if (type instanceof ByteType) {
        return (byte) longs[i];
      } else if (type instanceof BooleanType) {
        return longs[i] != 0;
      }
      return longs[i];
    }

    @Override
    public InternalRow get() {
      return row;
    }

    @Override
    public void close() throws IOException {
      batches.close();
    }
  }
}
