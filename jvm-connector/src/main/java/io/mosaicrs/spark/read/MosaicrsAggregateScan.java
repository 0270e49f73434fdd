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
import org.apache.spark.sql.types.ByteType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.DoubleType;
import org.apache.spark.sql.types.FloatType;
import org.apache.spark.sql.types.IntegerType;
import org.apache.spark.sql.types.LongType;
import org.apache.spark.sql.types.ShortType;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.vectorized.ColumnVector;
import org.apache.spark.sql.vectorized.ColumnarBatch;

/**
 * Partial aggregates pushed down by Spark ({@code AggregatePushDown}): each
 * task reads its pieces' columns as the columnar scan does and folds them into
 * one row of {@code COUNT(*)}, {@code COUNT(col)} and {@code SUM(col)}
 * values; Spark's final aggregate combines the tasks' rows. A sum runs over
 * the values in row order, as Spark's own partial aggregate of the task would.
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
   * @param kinds per aggregate: {@link #COUNT_STAR}, {@link #COUNT} or {@link #SUM}
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

  private String label(int i) {
    switch (kinds[i]) {
      case COUNT_STAR:
        return "COUNT(*)";
      case COUNT:
        return "COUNT(" + columns[i] + ")";
      default:
        return "SUM(" + columns[i] + ")";
    }
  }

  @Override
  public StructType readSchema() {
    // Spark matches these columns to the pushed aggregates by position: a
    // count is a bigint, an integral sum a bigint and a float sum a double,
    // the types of Spark's own partial aggregates.
    StructField[] fields = new StructField[kinds.length];
    for (int i = 0; i < kinds.length; i++) {
      boolean count = kinds[i] != SUM;
      DataType type =
          count || !(types[i] instanceof FloatType || types[i] instanceof DoubleType)
              ? DataTypes.LongType
              : DataTypes.DoubleType;
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
    /** Per sum: whether a non-null value was added (else the sum is null, as Spark's). */
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
          } else {
            add(i, batch.column(ordinals[i]), rows);
          }
        }
      }
      Object[] values = new Object[kinds.length];
      for (int i = 0; i < kinds.length; i++) {
        if (kinds[i] != SUM) {
          values[i] = longs[i];
        } else if (seen[i]) {
          boolean floating = types[i] instanceof FloatType || types[i] instanceof DoubleType;
          values[i] = floating ? (Object) doubles[i] : (Object) longs[i];
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
