package io.mosaicrs.spark

import java.nio.{ByteBuffer, ByteOrder}

import io.mosaicrs.spark.jni.MosaicrsInternalException

import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.catalyst.expressions.SpecializedGetters
import org.apache.spark.sql.types._

/**
 * The connector's own rows-to-Arrow writer: appends the values of Spark
 * rows, column by column, into little-endian direct byte buffers laid out
 * as Arrow buffers (validity bitmap, offsets, values; children for arrays,
 * structs and maps). It uses only `InternalRow` and the public data types,
 * and no Arrow library, so no Spark or Arrow Java version can clash with it.
 *
 * At each batch, [[batch]] hands the buffers to the native writer, which
 * copies and validates them (see jvm-connector/native/src/column_buffers.rs for the
 * buffers of each type); [[reset]] then empties them, keeping their memory
 * for the next batch. Values are copied in, so Spark may reuse row objects.
 *
 * {{{
 * val rows = new ArrowLayoutWriter(schema, 8192)
 * rows.write(row)                // for each row
 * val batch = rows.batch()       // send it to NativeBridge.writeColumns
 * rows.reset()
 * }}}
 *
 * @param schema       the rows' schema (types checked by [[MosaicrsTypes.check]])
 * @param expectedRows rows per batch, to size the first buffers
 */
final class ArrowLayoutWriter(schema: StructType, expectedRows: Int) {
  import ArrowLayoutWriter._

  private val initialRows = math.max(16, math.min(expectedRows, 4096))
  private val columns: Array[ColumnWriter] =
    schema.fields.map(f => ColumnWriter(f.name, f.dataType, initialRows))
  private var rowCount = 0

  private val nodeCount = columns.map(_.nodeCount).sum
  private val bufferCount = columns.map(_.bufferCount).sum
  private val layout = Batch(
    new Array[Int](nodeCount),
    new Array[ByteBuffer](bufferCount),
    new Array[Int](bufferCount))

  /** Rows written since the last [[reset]]. */
  def rows: Int = rowCount

  /** Copies the values of `row` into the buffers. */
  def write(row: InternalRow): Unit = {
    var i = 0
    while (i < columns.length) {
      columns(i).write(row, i)
      i += 1
    }
    rowCount += 1
  }

  /** Bytes in use in all buffers. */
  def bytesUsed: Long = columns.iterator.map(_.bytesUsed).sum

  /**
   * The current batch: node lengths and buffers in pre-order of the schema.
   * The arrays are reused; they stay valid until the next [[write]] or [[reset]].
   */
  def batch(): Batch = {
    val cursor = new Cursor(layout)
    columns.foreach(_.exportTo(cursor))
    layout
  }

  /** Empties the buffers for the next batch, keeping their memory. */
  def reset(): Unit = {
    columns.foreach(_.reset())
    rowCount = 0
  }
}

object ArrowLayoutWriter {

  /**
   * One batch as the native writer takes it: every type node's length, and
   * every node's buffers with the bytes used of each, in pre-order.
   */
  final case class Batch(nodeLengths: Array[Int], buffers: Array[ByteBuffer], bufferLengths: Array[Int])

  private[spark] final class Cursor(batch: Batch) {
    private var node = 0
    private var buffer = 0

    def node(length: Int): Unit = {
      batch.nodeLengths(node) = length
      node += 1
    }

    def buffer(bytes: NativeBuffer): Unit = add(bytes.buf, bytes.size)

    /** A buffer of zero bytes: for validity, "no nulls". */
    def empty(): Unit = add(EmptyBuffer, 0)

    private def add(bytes: ByteBuffer, length: Int): Unit = {
      batch.buffers(buffer) = bytes
      batch.bufferLengths(buffer) = length
      buffer += 1
    }
  }

  private val EmptyBuffer: ByteBuffer = ByteBuffer.allocateDirect(8)

  /** Largest buffer: offsets are 32-bit, and a ByteBuffer holds at most 2 GiB. */
  private val MaxBufferBytes = Int.MaxValue - 64
}

/** A growable little-endian direct buffer; `size` bytes of it are in use. */
private[spark] final class NativeBuffer(initialCapacity: Int, what: => String) {
  var buf: ByteBuffer = NativeBuffer.allocate(math.max(initialCapacity, 64))
  var size: Int = 0

  @inline def reserve(extra: Int): Unit =
    if (buf.capacity - size < extra) grow(size.toLong + extra)

  private def grow(needed: Long): Unit = {
    if (needed > NativeBuffer.MaxBytes) {
      throw new MosaicrsInternalException(
        s"a batch of $what would exceed 2 GiB; lower the mosaicrs option batchRows")
    }
    var capacity = buf.capacity.toLong * 2
    while (capacity < needed) capacity *= 2
    val next = NativeBuffer.allocate(math.min(capacity, NativeBuffer.MaxBytes).toInt)
    val used = buf.duplicate()
    used.position(0).limit(size)
    next.put(used)
    next.position(0)
    buf = next
  }

  @inline def putByte(v: Byte): Unit = { reserve(1); buf.put(size, v); size += 1 }
  @inline def putShort(v: Short): Unit = { reserve(2); buf.putShort(size, v); size += 2 }
  @inline def putInt(v: Int): Unit = { reserve(4); buf.putInt(size, v); size += 4 }
  @inline def putLong(v: Long): Unit = { reserve(8); buf.putLong(size, v); size += 8 }
  @inline def putFloat(v: Float): Unit = { reserve(4); buf.putFloat(size, v); size += 4 }
  @inline def putDouble(v: Double): Unit = { reserve(8); buf.putDouble(size, v); size += 8 }

  def putBytes(bytes: Array[Byte]): Unit = {
    reserve(bytes.length)
    buf.position(size)
    buf.put(bytes)
    size += bytes.length
  }

  def putBytes(bytes: ByteBuffer): Unit = {
    val n = bytes.remaining
    reserve(n)
    buf.position(size)
    buf.put(bytes)
    size += n
  }

  def putZeros(n: Int): Unit = {
    reserve(n)
    var i = 0
    while (i < n) { buf.put(size + i, 0.toByte); i += 1 }
    size += n
  }

  def reset(): Unit = size = 0
}

private[spark] object NativeBuffer {
  val MaxBytes: Int = Int.MaxValue - 64

  def allocate(bytes: Int): ByteBuffer = ByteBuffer.allocateDirect(bytes).order(ByteOrder.LITTLE_ENDIAN)
}

/** An Arrow bitmap (validity or boolean values) of `length` bits. */
private[spark] final class BitmapBuffer(initialBits: Int, what: => String) {
  val bytes = new NativeBuffer((initialBits + 7) / 8, what)
  var length = 0
  var unset = 0

  @inline def append(bit: Boolean): Unit = {
    val i = length
    if ((i & 7) == 0) bytes.putByte(0)
    if (bit) {
      val at = i >>> 3
      bytes.buf.put(at, (bytes.buf.get(at) | (1 << (i & 7))).toByte)
    } else {
      unset += 1
    }
    length += 1
  }

  /** Turns the last bit off (a value that turned out to be null). */
  def clearLast(): Unit = {
    val i = length - 1
    val at = i >>> 3
    bytes.buf.put(at, (bytes.buf.get(at) & ~(1 << (i & 7))).toByte)
    unset += 1
  }

  def reset(): Unit = {
    bytes.reset()
    length = 0
    unset = 0
  }
}

/** Appends one column (or nested field) of rows into its Arrow buffers. */
private[spark] abstract class ColumnWriter(val name: String, initialRows: Int) {
  final val validity = new BitmapBuffer(initialRows, name)
  final var length = 0

  /** Appends value `ordinal` of `in` (a row, struct or array). */
  final def write(in: SpecializedGetters, ordinal: Int): Unit = {
    if (in.isNullAt(ordinal)) {
      validity.append(false)
      writeNull()
    } else {
      validity.append(true)
      writeValue(in, ordinal)
    }
    length += 1
  }

  /** Appends a null: the field of a null struct. */
  final def appendNull(): Unit = {
    validity.append(false)
    writeNull()
    length += 1
  }

  protected def writeValue(in: SpecializedGetters, ordinal: Int): Unit
  protected def writeNull(): Unit

  /** Type nodes and buffers this writer exports (with its children). */
  def nodeCount: Int
  def bufferCount: Int

  def exportTo(cursor: ArrowLayoutWriter.Cursor): Unit

  def bytesUsed: Long

  def reset(): Unit = {
    validity.reset()
    length = 0
    resetData()
  }

  protected def resetData(): Unit

  /** This node's length and validity (empty when nothing is null). */
  protected final def exportValidity(cursor: ArrowLayoutWriter.Cursor): Unit = {
    cursor.node(length)
    if (validity.unset == 0) cursor.empty() else cursor.buffer(validity.bytes)
  }
}

private[spark] object ColumnWriter {

  /** The writer of a field of `dataType` (one of the types [[MosaicrsTypes]] accepts). */
  def apply(name: String, dataType: DataType, rows: Int): ColumnWriter = dataType match {
    case NullType => new NullWriter(name, rows)
    case BooleanType => new BooleanWriter(name, rows)
    case ByteType => new FixedWriter(name, rows, 1) {
      override def writeValue(in: SpecializedGetters, o: Int): Unit = values.putByte(in.getByte(o))
    }
    case ShortType => new FixedWriter(name, rows, 2) {
      override def writeValue(in: SpecializedGetters, o: Int): Unit = values.putShort(in.getShort(o))
    }
    case IntegerType | DateType => new FixedWriter(name, rows, 4) {
      override def writeValue(in: SpecializedGetters, o: Int): Unit = values.putInt(in.getInt(o))
    }
    case LongType | TimestampType | TimestampNTZType => new FixedWriter(name, rows, 8) {
      override def writeValue(in: SpecializedGetters, o: Int): Unit = values.putLong(in.getLong(o))
    }
    case FloatType => new FixedWriter(name, rows, 4) {
      override def writeValue(in: SpecializedGetters, o: Int): Unit = values.putFloat(in.getFloat(o))
    }
    case DoubleType => new FixedWriter(name, rows, 8) {
      override def writeValue(in: SpecializedGetters, o: Int): Unit =
        values.putDouble(in.getDouble(o))
    }
    case d: DecimalType => new DecimalWriter(name, rows, d.precision, d.scale)
    case _: StringType => new VarWriter(name, rows) {
      override def writeValue(in: SpecializedGetters, o: Int): Unit = {
        // Wraps the row's own bytes (no copy) when they live in a byte array.
        val bytes = in.getUTF8String(o).getByteBuffer
        values.putBytes(bytes)
        offsets.putInt(values.size)
      }
    }
    case BinaryType => new VarWriter(name, rows) {
      override def writeValue(in: SpecializedGetters, o: Int): Unit = {
        values.putBytes(in.getBinary(o))
        offsets.putInt(values.size)
      }
    }
    case ArrayType(element, _) =>
      new ListWriter(name, rows, ColumnWriter(s"$name.element", element, rows))
    case StructType(fields) =>
      new StructWriter(name, rows, fields.map(f => ColumnWriter(s"$name.${f.name}", f.dataType, rows)))
    case MapType(key, value, _) =>
      new MapWriter(
        name,
        rows,
        ColumnWriter(s"$name.key", key, rows),
        ColumnWriter(s"$name.value", value, rows))
    case udt: UserDefinedType[_] => ColumnWriter(name, udt.sqlType, rows)
    case other =>
      throw new MosaicrsInternalException(s"no Arrow writer for column `$name` of type ${other.sql}")
  }
}

/** Arrow Null: a length, no buffers. */
private[spark] final class NullWriter(name: String, rows: Int) extends ColumnWriter(name, rows) {
  override protected def writeValue(in: SpecializedGetters, o: Int): Unit = ()
  override protected def writeNull(): Unit = ()
  override def nodeCount: Int = 1
  override def bufferCount: Int = 0
  override def exportTo(cursor: ArrowLayoutWriter.Cursor): Unit = cursor.node(length)
  override def bytesUsed: Long = 0
  override protected def resetData(): Unit = ()
}

private[spark] final class BooleanWriter(name: String, rows: Int) extends ColumnWriter(name, rows) {
  private val values = new BitmapBuffer(rows, name)
  override protected def writeValue(in: SpecializedGetters, o: Int): Unit =
    values.append(in.getBoolean(o))
  override protected def writeNull(): Unit = values.append(false)
  override def nodeCount: Int = 1
  override def bufferCount: Int = 2
  override def exportTo(cursor: ArrowLayoutWriter.Cursor): Unit = {
    exportValidity(cursor)
    cursor.buffer(values.bytes)
  }
  override def bytesUsed: Long = validity.bytes.size.toLong + values.bytes.size
  override protected def resetData(): Unit = values.reset()
}

/** Fixed-width values (`width` bytes each); nulls hold zeros. */
private[spark] abstract class FixedWriter(name: String, rows: Int, width: Int)
    extends ColumnWriter(name, rows) {
  protected final val values = new NativeBuffer(rows * width, name)
  override protected def writeNull(): Unit = values.putZeros(width)
  override def nodeCount: Int = 1
  override def bufferCount: Int = 2
  override def exportTo(cursor: ArrowLayoutWriter.Cursor): Unit = {
    exportValidity(cursor)
    cursor.buffer(values)
  }
  override def bytesUsed: Long = validity.bytes.size.toLong + values.size
  override protected def resetData(): Unit = values.reset()
}

/**
 * Decimal128: the unscaled value as 16 bytes, little-endian two's complement.
 * A value that does not fit `decimal(precision, scale)` is stored as null,
 * as Spark's own Arrow conversion does.
 */
private[spark] final class DecimalWriter(name: String, rows: Int, precision: Int, scale: Int)
    extends FixedWriter(name, rows, 16) {
  override protected def writeValue(in: SpecializedGetters, o: Int): Unit = {
    val decimal = in.getDecimal(o, precision, scale)
    if (!decimal.changePrecision(precision, scale)) {
      validity.clearLast()
      values.putZeros(16)
    } else if (precision <= Decimal.MAX_LONG_DIGITS) {
      val unscaled = decimal.toUnscaledLong
      values.putLong(unscaled)
      values.putLong(unscaled >> 63)
    } else {
      val big = decimal.toJavaBigDecimal.unscaledValue.toByteArray // big-endian
      val sign: Byte = if (big(0) < 0) -1 else 0
      values.reserve(16)
      var i = 0
      while (i < 16) {
        val fromEnd = big.length - 1 - i
        values.buf.put(values.size + i, if (fromEnd >= 0) big(fromEnd) else sign)
        i += 1
      }
      values.size += 16
    }
  }
}

/** Utf8 and Binary: 32-bit offsets and the bytes. */
private[spark] abstract class VarWriter(name: String, rows: Int) extends ColumnWriter(name, rows) {
  protected final val offsets = new NativeBuffer((rows + 1) * 4, name)
  protected final val values = new NativeBuffer(rows * 16, name)
  offsets.putInt(0)

  override protected def writeNull(): Unit = offsets.putInt(values.size)
  override def nodeCount: Int = 1
  override def bufferCount: Int = 3
  override def exportTo(cursor: ArrowLayoutWriter.Cursor): Unit = {
    exportValidity(cursor)
    cursor.buffer(offsets)
    cursor.buffer(values)
  }
  override def bytesUsed: Long = validity.bytes.size.toLong + offsets.size + values.size
  override protected def resetData(): Unit = {
    offsets.reset()
    values.reset()
    offsets.putInt(0)
  }
}

private[spark] final class ListWriter(name: String, rows: Int, element: ColumnWriter)
    extends ColumnWriter(name, rows) {
  private val offsets = new NativeBuffer((rows + 1) * 4, name)
  offsets.putInt(0)

  override protected def writeValue(in: SpecializedGetters, o: Int): Unit = {
    val array = in.getArray(o)
    val n = array.numElements()
    var i = 0
    while (i < n) {
      element.write(array, i)
      i += 1
    }
    offsets.putInt(element.length)
  }
  override protected def writeNull(): Unit = offsets.putInt(element.length)
  override def nodeCount: Int = 1 + element.nodeCount
  override def bufferCount: Int = 2 + element.bufferCount
  override def exportTo(cursor: ArrowLayoutWriter.Cursor): Unit = {
    exportValidity(cursor)
    cursor.buffer(offsets)
    element.exportTo(cursor)
  }
  override def bytesUsed: Long = validity.bytes.size.toLong + offsets.size + element.bytesUsed
  override protected def resetData(): Unit = {
    offsets.reset()
    offsets.putInt(0)
    element.reset()
  }
}

private[spark] final class StructWriter(name: String, rows: Int, fields: Array[ColumnWriter])
    extends ColumnWriter(name, rows) {
  override protected def writeValue(in: SpecializedGetters, o: Int): Unit = {
    val struct = in.getStruct(o, fields.length)
    var i = 0
    while (i < fields.length) {
      fields(i).write(struct, i)
      i += 1
    }
  }
  override protected def writeNull(): Unit = fields.foreach(_.appendNull())
  override def nodeCount: Int = 1 + fields.map(_.nodeCount).sum
  override def bufferCount: Int = 1 + fields.map(_.bufferCount).sum
  override def exportTo(cursor: ArrowLayoutWriter.Cursor): Unit = {
    exportValidity(cursor)
    fields.foreach(_.exportTo(cursor))
  }
  override def bytesUsed: Long = validity.bytes.size.toLong + fields.map(_.bytesUsed).sum
  override protected def resetData(): Unit = fields.foreach(_.reset())
}

/** Map: offsets, then a non-null `entries` struct of keys and values. */
private[spark] final class MapWriter(
    name: String,
    rows: Int,
    keys: ColumnWriter,
    values: ColumnWriter)
    extends ColumnWriter(name, rows) {
  private val offsets = new NativeBuffer((rows + 1) * 4, name)
  offsets.putInt(0)

  override protected def writeValue(in: SpecializedGetters, o: Int): Unit = {
    val map = in.getMap(o)
    val (k, v) = (map.keyArray(), map.valueArray())
    val n = map.numElements()
    var i = 0
    while (i < n) {
      keys.write(k, i)
      values.write(v, i)
      i += 1
    }
    offsets.putInt(keys.length)
  }
  override protected def writeNull(): Unit = offsets.putInt(keys.length)
  override def nodeCount: Int = 2 + keys.nodeCount + values.nodeCount
  override def bufferCount: Int = 3 + keys.bufferCount + values.bufferCount
  override def exportTo(cursor: ArrowLayoutWriter.Cursor): Unit = {
    exportValidity(cursor)
    cursor.buffer(offsets)
    cursor.node(keys.length) // the entries struct: never null
    cursor.empty()
    keys.exportTo(cursor)
    values.exportTo(cursor)
  }
  override def bytesUsed: Long =
    validity.bytes.size.toLong + offsets.size + keys.bytesUsed + values.bytesUsed
  override protected def resetData(): Unit = {
    offsets.reset()
    offsets.putInt(0)
    keys.reset()
    values.reset()
  }
}
