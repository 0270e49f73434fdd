package io.mosaicrs.spark.read;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import io.mosaicrs.spark.jni.MosaicrsInternalException;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.BinaryType;
import org.apache.spark.sql.types.BooleanType;
import org.apache.spark.sql.types.ByteType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DateType;
import org.apache.spark.sql.types.Decimal;
import org.apache.spark.sql.types.DecimalType;
import org.apache.spark.sql.types.DoubleType;
import org.apache.spark.sql.types.FloatType;
import org.apache.spark.sql.types.IntegerType;
import org.apache.spark.sql.types.LongType;
import org.apache.spark.sql.types.MapType;
import org.apache.spark.sql.types.NullType;
import org.apache.spark.sql.types.ShortType;
import org.apache.spark.sql.types.StringType;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.types.TimestampNTZType;
import org.apache.spark.sql.types.TimestampType;
import org.apache.spark.sql.vectorized.ColumnVector;
import org.apache.spark.sql.vectorized.ColumnarArray;
import org.apache.spark.sql.vectorized.ColumnarMap;
import org.apache.spark.unsafe.types.UTF8String;

/**
 * Spark {@link ColumnVector}s over raw Arrow buffers (little-endian
 * {@link ByteBuffer}s from {@link NativeScan#nextBatch}), one class per
 * physical layout, so that the read path needs no Arrow Java.
 *
 * <p>Every access goes through a {@code ByteBuffer}, which checks its bounds,
 * except string reads, which check the offsets against the data buffer before
 * {@link UTF8String#fromAddress} views the bytes in place.
 */
final class ArrowBufferVectors {
  private ArrowBufferVectors() {}

  /** The top-level column vectors of one batch, built from the native metadata. */
  static ColumnVector[] columns(StructType schema, long[] meta, ByteBuffer[] buffers) {
    Cursor cursor = new Cursor(meta, buffers);
    StructField[] fields = schema.fields();
    ColumnVector[] vectors = new ColumnVector[fields.length];
    for (int i = 0; i < fields.length; i++) {
      vectors[i] = build(fields[i].dataType(), cursor);
    }
    if (!cursor.finished()) {
      throw layoutError("the native batch has more column nodes than the schema " + schema.simpleString());
    }
    return vectors;
  }

  private static MosaicrsInternalException layoutError(String what) {
    return new MosaicrsInternalException(
        "mosaicrs read: " + what + "; the native library and the connector classes disagree");
  }

  /** One column node's metadata and buffers. */
  private static final class Node {
    final int length;
    final int nullCount;
    final ByteBuffer validity;
    final int validityBit;
    final int valuesBit;
    final long dataAddress;
    final ByteBuffer first;
    final ByteBuffer second;

    Node(long[] meta, ByteBuffer[] buffers, int index) {
      int m = 1 + index * NativeScan.NODE_STRIDE;
      int b = index * NativeScan.BUFFER_STRIDE;
      length = Math.toIntExact(meta[m]);
      nullCount = Math.toIntExact(meta[m + 1]);
      validityBit = (int) meta[m + 2];
      valuesBit = (int) meta[m + 3];
      dataAddress = meta[m + 4];
      validity = littleEndian(buffers[b]);
      first = littleEndian(buffers[b + 1]);
      second = littleEndian(buffers[b + 2]);
    }

    private static ByteBuffer littleEndian(ByteBuffer buffer) {
      return buffer == null ? null : buffer.order(ByteOrder.LITTLE_ENDIAN);
    }

    ByteBuffer required(ByteBuffer buffer, String what) {
      if (buffer == null) {
        throw layoutError("a column node has no " + what + " buffer");
      }
      return buffer;
    }
  }

  /** Walks the nodes depth-first, in the order the native side wrote them. */
  private static final class Cursor {
    private final long[] meta;
    private final ByteBuffer[] buffers;
    private final int nodes;
    private int next;

    Cursor(long[] meta, ByteBuffer[] buffers) {
      this.meta = meta;
      this.buffers = buffers;
      this.nodes = buffers.length / NativeScan.BUFFER_STRIDE;
      if ((meta.length - 1) != nodes * NativeScan.NODE_STRIDE) {
        throw layoutError("metadata and buffers describe different numbers of column nodes");
      }
    }

    Node take() {
      if (next >= nodes) {
        throw layoutError("the native batch has fewer column nodes than the schema");
      }
      return new Node(meta, buffers, next++);
    }

    boolean finished() {
      return next == nodes;
    }
  }

  private static ColumnVector build(DataType type, Cursor cursor) {
    Node node = cursor.take();
    if (type instanceof BooleanType) {
      return new BooleanVector(type, node);
    } else if (type instanceof ByteType) {
      return new ByteVector(type, node);
    } else if (type instanceof ShortType) {
      return new ShortVector(type, node);
    } else if (type instanceof IntegerType || type instanceof DateType) {
      return new IntVector(type, node);
    } else if (type instanceof LongType
        || type instanceof TimestampType
        || type instanceof TimestampNTZType) {
      return new LongVector(type, node);
    } else if (type instanceof FloatType) {
      return new FloatVector(type, node);
    } else if (type instanceof DoubleType) {
      return new DoubleVector(type, node);
    } else if (type instanceof DecimalType) {
      return new DecimalVector(type, node);
    } else if (type instanceof StringType || type instanceof BinaryType) {
      return new BytesVector(type, node);
    } else if (type instanceof NullType) {
      return new NullVector(type, node);
    } else if (type instanceof ArrayType) {
      ColumnVector element = build(((ArrayType) type).elementType(), cursor);
      return new ListVector(type, node, element);
    } else if (type instanceof MapType) {
      MapType map = (MapType) type;
      ColumnVector keys = build(map.keyType(), cursor);
      ColumnVector values = build(map.valueType(), cursor);
      return new MapVector(type, node, keys, values);
    } else if (type instanceof StructType) {
      StructField[] fields = ((StructType) type).fields();
      ColumnVector[] children = new ColumnVector[fields.length];
      for (int i = 0; i < fields.length; i++) {
        children[i] = build(fields[i].dataType(), cursor);
      }
      return new StructVector(type, node, children);
    }
    throw layoutError("type " + type.simpleString() + " has no mosaicrs column vector");
  }

  /** Validity, null counts and the accessors a layout does not have. */
  private abstract static class BufferVector extends ColumnVector {
    final int length;
    private final int nullCount;
    private final ByteBuffer validity;
    private final int validityBit;

    BufferVector(DataType type, Node node) {
      super(type);
      this.length = node.length;
      this.nullCount = node.nullCount;
      this.validity = node.nullCount > 0 ? node.validity : null;
      this.validityBit = node.validityBit;
    }

    @Override
    public void close() {
      // The memory belongs to the native batch, released by the reader.
    }

    @Override
    public boolean hasNull() {
      return nullCount > 0;
    }

    @Override
    public int numNulls() {
      return nullCount;
    }

    @Override
    public boolean isNullAt(int rowId) {
      if (validity == null) {
        return false;
      }
      int bit = validityBit + rowId;
      return (validity.get(bit >>> 3) & (1 << (bit & 7))) == 0;
    }

    private UnsupportedOperationException unsupported(String accessor) {
      return new UnsupportedOperationException(
          accessor + " is not defined for a mosaicrs column of type " + type.simpleString());
    }

    @Override
    public boolean getBoolean(int rowId) {
      throw unsupported("getBoolean");
    }

    @Override
    public byte getByte(int rowId) {
      throw unsupported("getByte");
    }

    @Override
    public short getShort(int rowId) {
      throw unsupported("getShort");
    }

    @Override
    public int getInt(int rowId) {
      throw unsupported("getInt");
    }

    @Override
    public long getLong(int rowId) {
      throw unsupported("getLong");
    }

    @Override
    public float getFloat(int rowId) {
      throw unsupported("getFloat");
    }

    @Override
    public double getDouble(int rowId) {
      throw unsupported("getDouble");
    }

    @Override
    public ColumnarArray getArray(int rowId) {
      throw unsupported("getArray");
    }

    @Override
    public ColumnarMap getMap(int rowId) {
      throw unsupported("getMap");
    }

    @Override
    public Decimal getDecimal(int rowId, int precision, int scale) {
      throw unsupported("getDecimal");
    }

    @Override
    public UTF8String getUTF8String(int rowId) {
      throw unsupported("getUTF8String");
    }

    @Override
    public byte[] getBinary(int rowId) {
      throw unsupported("getBinary");
    }

    @Override
    public ColumnVector getChild(int ordinal) {
      throw unsupported("getChild");
    }
  }

  private static final class NullVector extends BufferVector {
    NullVector(DataType type, Node node) {
      super(type, node);
    }

    @Override
    public boolean hasNull() {
      return length > 0;
    }

    @Override
    public int numNulls() {
      return length;
    }

    @Override
    public boolean isNullAt(int rowId) {
      return true;
    }
  }

  private static final class BooleanVector extends BufferVector {
    private final ByteBuffer values;
    private final int valuesBit;

    BooleanVector(DataType type, Node node) {
      super(type, node);
      this.values = node.required(node.first, "values");
      this.valuesBit = node.valuesBit;
    }

    @Override
    public boolean getBoolean(int rowId) {
      int bit = valuesBit + rowId;
      return (values.get(bit >>> 3) & (1 << (bit & 7))) != 0;
    }
  }

  private static final class ByteVector extends BufferVector {
    private final ByteBuffer values;

    ByteVector(DataType type, Node node) {
      super(type, node);
      this.values = node.required(node.first, "values");
    }

    @Override
    public byte getByte(int rowId) {
      return values.get(rowId);
    }
  }

  private static final class ShortVector extends BufferVector {
    private final ByteBuffer values;

    ShortVector(DataType type, Node node) {
      super(type, node);
      this.values = node.required(node.first, "values");
    }

    @Override
    public short getShort(int rowId) {
      return values.getShort(rowId << 1);
    }
  }

  private static final class IntVector extends BufferVector {
    private final ByteBuffer values;

    IntVector(DataType type, Node node) {
      super(type, node);
      this.values = node.required(node.first, "values");
    }

    @Override
    public int getInt(int rowId) {
      return values.getInt(rowId << 2);
    }
  }

  private static final class LongVector extends BufferVector {
    private final ByteBuffer values;

    LongVector(DataType type, Node node) {
      super(type, node);
      this.values = node.required(node.first, "values");
    }

    @Override
    public long getLong(int rowId) {
      return values.getLong(rowId << 3);
    }
  }

  private static final class FloatVector extends BufferVector {
    private final ByteBuffer values;

    FloatVector(DataType type, Node node) {
      super(type, node);
      this.values = node.required(node.first, "values");
    }

    @Override
    public float getFloat(int rowId) {
      return values.getFloat(rowId << 2);
    }
  }

  private static final class DoubleVector extends BufferVector {
    private final ByteBuffer values;

    DoubleVector(DataType type, Node node) {
      super(type, node);
      this.values = node.required(node.first, "values");
    }

    @Override
    public double getDouble(int rowId) {
      return values.getDouble(rowId << 3);
    }
  }

  /** Decimal128: 16-byte little-endian two's-complement unscaled values. */
  private static final class DecimalVector extends BufferVector {
    private final ByteBuffer values;

    DecimalVector(DataType type, Node node) {
      super(type, node);
      this.values = node.required(node.first, "values");
    }

    @Override
    public Decimal getDecimal(int rowId, int precision, int scale) {
      if (isNullAt(rowId)) {
        return null;
      }
      int at = rowId << 4;
      long low = values.getLong(at);
      long high = values.getLong(at + 8);
      if (precision <= Decimal.MAX_LONG_DIGITS() && high == (low >> 63)) {
        return Decimal.apply(low, precision, scale);
      }
      byte[] bigEndian = new byte[16];
      for (int i = 0; i < 16; i++) {
        bigEndian[i] = values.get(at + 15 - i);
      }
      return Decimal.apply(new BigDecimal(new BigInteger(bigEndian), scale), precision, scale);
    }
  }

  /** String and binary: i32 offsets (buffer 1) into the data (buffer 2). */
  private static final class BytesVector extends BufferVector {
    private final ByteBuffer offsets;
    private final ByteBuffer data;
    private final long dataAddress;

    BytesVector(DataType type, Node node) {
      super(type, node);
      this.offsets = node.required(node.first, "offsets");
      this.data = node.required(node.second, "data");
      this.dataAddress = node.dataAddress;
    }

    private int start(int rowId) {
      return offsets.getInt(rowId << 2);
    }

    private int checkedEnd(int rowId, int start) {
      int end = offsets.getInt((rowId + 1) << 2);
      if (start < 0 || end < start || end > data.capacity()) {
        throw new MosaicrsInternalException(
            "mosaicrs read: offsets " + start + ".." + end + " of row " + rowId
                + " lie outside the column's " + data.capacity() + " data bytes");
      }
      return end;
    }

    @Override
    public UTF8String getUTF8String(int rowId) {
      if (isNullAt(rowId)) {
        return null;
      }
      int start = start(rowId);
      int end = checkedEnd(rowId, start);
      // In place: the bytes stay valid until the reader moves to the next
      // batch, as for Spark's own column vectors.
      return UTF8String.fromAddress(null, dataAddress + start, end - start);
    }

    @Override
    public byte[] getBinary(int rowId) {
      if (isNullAt(rowId)) {
        return null;
      }
      int start = start(rowId);
      int end = checkedEnd(rowId, start);
      byte[] bytes = new byte[end - start];
      ByteBuffer view = data.duplicate();
      view.position(start);
      view.get(bytes);
      return bytes;
    }
  }

  private static final class ListVector extends BufferVector {
    private final ByteBuffer offsets;
    private final ColumnVector element;

    ListVector(DataType type, Node node, ColumnVector element) {
      super(type, node);
      this.offsets = node.required(node.first, "offsets");
      this.element = element;
    }

    @Override
    public ColumnarArray getArray(int rowId) {
      if (isNullAt(rowId)) {
        return null;
      }
      int start = offsets.getInt(rowId << 2);
      int end = offsets.getInt((rowId + 1) << 2);
      return new ColumnarArray(element, start, end - start);
    }
  }

  private static final class MapVector extends BufferVector {
    private final ByteBuffer offsets;
    private final ColumnVector keys;
    private final ColumnVector values;

    MapVector(DataType type, Node node, ColumnVector keys, ColumnVector values) {
      super(type, node);
      this.offsets = node.required(node.first, "offsets");
      this.keys = keys;
      this.values = values;
    }

    @Override
    public ColumnarMap getMap(int rowId) {
      if (isNullAt(rowId)) {
        return null;
      }
      int start = offsets.getInt(rowId << 2);
      int end = offsets.getInt((rowId + 1) << 2);
      return new ColumnarMap(keys, values, start, end - start);
    }
  }

  private static final class StructVector extends BufferVector {
    private final ColumnVector[] children;

    StructVector(DataType type, Node node, ColumnVector[] children) {
      super(type, node);
      this.children = children;
    }

    @Override
    public ColumnVector getChild(int ordinal) {
      return children[ordinal];
    }
  }
}
