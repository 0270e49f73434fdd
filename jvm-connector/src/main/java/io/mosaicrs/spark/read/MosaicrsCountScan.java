package io.mosaicrs.spark.read;

import io.mosaicrs.spark.jni.DatasetLocation;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.GenericInternalRow;
import org.apache.spark.sql.connector.read.LocalScan;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * {@code count(*)} answered from the dataset's index: one row holding the
 * index's row count once per pushed {@code COUNT(*)}. Spark plans it as a
 * local table scan, so no job runs and no shard is opened.
 */
final class MosaicrsCountScan implements LocalScan {
  private final DatasetLocation location;
  private final long rows;
  private final int counts;

  MosaicrsCountScan(DatasetLocation location, long rows, int counts) {
    this.location = location;
    this.rows = rows;
    this.counts = counts;
  }

  @Override
  public StructType readSchema() {
    StructField[] fields = new StructField[counts];
    for (int i = 0; i < counts; i++) {
      fields[i] = DataTypes.createStructField(i == 0 ? "count(*)" : "count(*)_" + i, DataTypes.LongType, false);
    }
    return DataTypes.createStructType(fields);
  }

  @Override
  public InternalRow[] rows() {
    Object[] values = new Object[counts];
    for (int i = 0; i < counts; i++) {
      values[i] = rows;
    }
    return new InternalRow[] {new GenericInternalRow(values)};
  }

  @Override
  public String description() {
    return "mosaicrs " + location + " COUNT(*) = " + rows + " from index.json";
  }
}
