package io.mosaicrs.spark

import java.nio.ByteBuffer

import io.mosaicrs.spark.jni.MosaicrsInternalException
import io.mosaicrs.spark.write.LittleEndian

import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.catalyst.expressions.{SpecializedGetters, UnsafeRow}
import org.apache.spark.sql.types._
import org.apache.spark.unsafe.Platform

/**
 * The connector's own rows-to-Arrow writer: appends the values of Spark
 * rows, column by column, into little-endian byte arrays laid out
 * as Arrow buffers (validity bitmap, offsets, values; children for arrays,
 * structs and maps). It uses only `InternalRow` and the public data types,
 * and no Arrow library, so no Spark or Arrow Java version can clash with it.
 *
 * Top-level fixed-width columns are copied row by row in one loop per
 * value width, straight from an `UnsafeRow`'s slots ([[FixedColumns]]); the
 * other columns are written value by value through their writers.
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

  /**
   * Top-level fixed-width columns go through [[FixedColumns]], which copies
   * each row's values into their buffers in one loop per width; the other
   * columns (strings, nested, boolean, decimal) are written value by value.
   */
  private val fixedOrdinals: Array[Int] =
    columns.indices.filter(i => FixedColumns.accepts(columns(i))).toArray
  private val rowOrdinals: Array[Int] =
    columns.indices.filterNot(i => FixedColumns.accepts(columns(i))).toArray
  private val fixed: FixedColumns =
    if (fixedOrdinals.isEmpty) null
    else new FixedColumns(columns.length, fixedOrdinals, fixedOrdinals.map(columns(_).asInstanceOf[FixedWriter]))

  private val nodeCount = columns.map(_.nodeCount).sum
  private val bufferCount = columns.map(_.bufferCount).sum
  private val layout = Batch(
    new Array[Int](nodeCount),
    new Array[Array[Byte]](bufferCount),
    new Array[Int](bufferCount))

  /** Rows written since the last [[reset]]. */
  def rows: Int = rowCount

  /** Copies the values of `row` into the buffers. */
  def write(row: InternalRow): Unit = {
    if (fixed != null) fixed.append(row)
    val ordinals = rowOrdinals
    var i = 0
    while (i < ordinals.length) {
      val o = ordinals(i)
      columns(o).write(row, o)
      i += 1
    }
    rowCount += 1
  }

  /** Bytes in use in all buffers (a plain loop: no iterator, no boxing). */
  def bytesUsed: Long = {
    var total = if (fixed != null) fixed.pendingBytes else 0L
    var i = 0
    while (i < columns.length) {
      total += columns(i).bytesUsed
      i += 1
    }
    total
  }

  /**
   * The current batch: node lengths and buffers in pre-order of the schema.
   * The arrays are reused; they stay valid until the next [[write]] or [[reset]].
   */
  def batch(): Batch = {
    if (fixed != null) fixed.sync()
    val cursor = new Cursor(layout)
    columns.foreach(_.exportTo(cursor))
    layout
  }

  /** Empties the buffers for the next batch, keeping their memory. */
  def reset(): Unit = {
    columns.foreach(_.reset())
    if (fixed != null) fixed.reset()
    rowCount = 0
  }
}

/**
 * The top-level fixed-width columns (byte, short, int, long, float, double
 * and the types stored as those) of a batch, copied row by row straight into
 * their writers' value buffers: one loop per value width over the columns of
 * that width, with the buffers and offsets in arrays, no call per column and,
 * for an `UnsafeRow` (what Spark's operators hand a writer), no typed getter:
 * each value is read from its slot. Other rows take their getters.
 *
 * Row `r`'s value of a `w`-byte column sits at byte `r * w` of its buffer
 * (nulls hold zeros), so one capacity check per row covers every column.
 * Null bits are kept per row and turned into validity bitmaps at [[sync]].
 *
 * @param fieldCount the schema's field count
 * @param ordinals   the schema ordinals of the columns held
 * @param writers    their writers, whose value buffers this class fills
 */
private[spark] final class FixedColumns(
    fieldCount: Int,
    ordinals: Array[Int],
    writers: Array[FixedWriter]) {
  import FixedColumns.LittleEndianHost

  private val bitWords = (fieldCount + 63) / 64
  /** The fixed region of an `UnsafeRow` of `fieldCount` fields (null bits, slots), in bytes. */
  private val fixedBytes = (bitWords + fieldCount).toLong * 8

  /** The columns of some value widths: their writers, ordinals, slot offsets and current arrays. */
  private final class Group(widths: Int => Boolean) {
    val members: Array[Int] = writers.indices.filter(i => widths(writers(i).width)).toArray
    val ordinal: Array[Int] = members.map(ordinals(_))
    val writer: Array[FixedWriter] = members.map(writers(_))
    val slotOffset: Array[Long] = ordinal.map(o => (bitWords + o).toLong * 8)
    /** Whether each column is floating point (its getter differs; its slot does not). */
    val floating: Array[Boolean] =
      writer.map(w => w.isInstanceOf[FloatWriter] || w.isInstanceOf[DoubleWriter])
    val short: Array[Boolean] = writer.map(_.width == 2)
    val out: Array[Array[Byte]] = writer.map(_.values.bytes)
    def refresh(): Unit = {
      var k = 0
      while (k < writer.length) { out(k) = writer(k).values.bytes; k += 1 }
    }
  }

  private val g8 = new Group(_ == 8)
  private val g4 = new Group(_ == 4)
  /** Shorts and bytes, rarer: one loop that tests the width per value. */
  private val narrow = new Group(_ < 4)
  private val groups = Array(g8, g4, narrow)
  private val rowBytes = bitWords * 8L + writers.map(_.width.toLong).sum

  /** Rows held by the buffers, and how many of them the writers' lengths count. */
  private var row = 0
  private var synced = 0
  /** Rows the buffers have room for. */
  private var capacity = 0
  /** Null bits of the rows since `synced`, `bitWords` per row, and their OR. */
  private var nullBits = new Array[Long](bitWords * 64)
  private val nullSeen = new Array[Long](bitWords)

  /** Bytes held that the writers' sizes do not count yet. */
  def pendingBytes: Long = (row - synced) * rowBytes

  def append(in: InternalRow): Unit = {
    if (row == capacity) grow()
    val bits = (row - synced) * bitWords
    if (nullBits.length - bits < bitWords) {
      nullBits = java.util.Arrays.copyOf(nullBits, math.max(nullBits.length * 2, bits + bitWords))
    }
    in match {
      // `UnsafeRow` keeps `fixedBytes` bytes at its offset for a row of
      // `fieldCount` fields: null bits, then one 8-byte slot per field with a
      // fixed-width value at its start, in the host's byte order. A row that
      // claims fewer, or a big-endian host, takes the getters.
      case u: UnsafeRow
          if LittleEndianHost && u.numFields == fieldCount && u.getSizeInBytes >= fixedBytes =>
        copyUnsafe(u.getBaseObject, u.getBaseOffset, bits)
      case _ => copyWithGetters(in, bits)
    }
    row += 1
  }

  /**
   * Copies the slots of one `UnsafeRow` with raw stores: on a little-endian
   * host the slot's bytes are already Arrow's. No store needs its own bounds
   * check: `append` grew the buffers to hold `row` (`row < capacity`, and
   * each array has `capacity * width` bytes or more), so bytes
   * `row * width` to `row * width + width` of every array lie inside it.
   */
  private def copyUnsafe(base: AnyRef, offset: Long, bits: Int): Unit = {
    var w = 0
    while (w < bitWords) {
      val word = Platform.getLong(base, offset + 8L * w)
      nullBits(bits + w) = word
      nullSeen(w) |= word
      w += 1
    }
    var at = Platform.BYTE_ARRAY_OFFSET + row.toLong * 8
    var out = g8.out
    var from = g8.slotOffset
    var k = 0
    while (k < out.length) {
      Platform.putLong(out(k), at, Platform.getLong(base, offset + from(k)))
      k += 1
    }
    at = Platform.BYTE_ARRAY_OFFSET + row.toLong * 4
    out = g4.out
    from = g4.slotOffset
    k = 0
    while (k < out.length) {
      Platform.putInt(out(k), at, Platform.getInt(base, offset + from(k)))
      k += 1
    }
    out = narrow.out
    from = narrow.slotOffset
    val short = narrow.short
    k = 0
    while (k < out.length) {
      if (short(k)) {
        Platform.putShort(out(k), Platform.BYTE_ARRAY_OFFSET + row.toLong * 2,
          Platform.getShort(base, offset + from(k)))
      } else out(k)(row) = Platform.getByte(base, offset + from(k))
      k += 1
    }
  }

  private def copyWithGetters(in: InternalRow, bits: Int): Unit = {
    java.util.Arrays.fill(nullBits, bits, bits + bitWords, 0L)
    var g = 0
    while (g < groups.length) {
      val group = groups(g)
      var k = 0
      while (k < group.out.length) {
        val o = group.ordinal(k)
        val out = group.out(k)
        val at = row * group.writer(k).width
        if (in.isNullAt(o)) {
          val bit = 1L << (o & 63)
          nullBits(bits + (o >>> 6)) |= bit
          nullSeen(o >>> 6) |= bit
          java.util.Arrays.fill(out, at, at + group.writer(k).width, 0.toByte)
        } else if (g == 0) {
          LittleEndian.putLong(out, at,
            if (group.floating(k)) java.lang.Double.doubleToRawLongBits(in.getDouble(o)) else in.getLong(o))
        } else if (g == 1) {
          LittleEndian.putInt(out, at,
            if (group.floating(k)) java.lang.Float.floatToRawIntBits(in.getFloat(o)) else in.getInt(o))
        } else if (group.short(k)) {
          LittleEndian.putShort(out, at, in.getShort(o))
        } else {
          out(at) = in.getByte(o)
        }
        k += 1
      }
      g += 1
    }
  }

  /**
   * Makes room for twice the rows. A buffer's `size` counts the synced rows
   * only; growing keeps the whole array, so the rows past it stay.
   */
  private def grow(): Unit = {
    val rows = math.max(16L, capacity * 2L)
    var i = 0
    while (i < writers.length) {
      val values = writers(i).values
      val needed = math.min(rows * writers(i).width, LayoutBuffer.MaxBytes.toLong + 1)
      values.reserve((needed - values.size).toInt)
      i += 1
    }
    capacity = writers.map(w => w.values.bytes.length / w.width).min
    groups.foreach(_.refresh())
  }

  /**
   * Brings the writers up to date with the rows appended since the last
   * call: their value sizes, lengths and validity (nulls' values zeroed).
   */
  def sync(): Unit = if (row > synced) {
    val n = row - synced
    var i = 0
    while (i < writers.length) {
      val writer = writers(i)
      val width = writer.width
      val o = ordinals(i)
      val word = o >>> 6
      val mask = 1L << (o & 63)
      writer.values.size = row * width
      if ((nullSeen(word) & mask) == 0) writer.validity.appendSet(n)
      else {
        var r = 0
        while (r < n) {
          if ((nullBits(r * bitWords + word) & mask) != 0) {
            val at = (synced + r) * width
            java.util.Arrays.fill(writer.values.bytes, at, at + width, 0.toByte)
            writer.validity.appendUnset()
          } else writer.validity.appendSet()
          r += 1
        }
      }
      writer.length += n
      i += 1
    }
    synced = row
    java.util.Arrays.fill(nullSeen, 0L)
  }

  /** Starts over at row 0 (after the writers' own reset), keeping the buffers. */
  def reset(): Unit = {
    row = 0
    synced = 0
    java.util.Arrays.fill(nullSeen, 0L)
  }
}

private[spark] object FixedColumns {

  /** Whether `UnsafeRow` slots hold values little-endian, as Arrow stores them. */
  private val LittleEndianHost = java.nio.ByteOrder.nativeOrder == java.nio.ByteOrder.LITTLE_ENDIAN

  /** Whether [[FixedColumns]] writes a column of this writer. */
  def accepts(writer: ColumnWriter): Boolean = writer match {
    case _: ByteWriter | _: ShortWriter | _: IntWriter | _: FloatWriter | _: LongWriter |
        _: DoubleWriter => true
    case _ => false
  }
}

object ArrowLayoutWriter {

  /**
   * One batch as the native writer takes it: every type node's length, and
   * every node's buffers with the bytes used of each, in pre-order.
   */
  final case class Batch(nodeLengths: Array[Int], buffers: Array[Array[Byte]], bufferLengths: Array[Int])

  private[spark] final class Cursor(batch: Batch) {
    private var node = 0
    private var buffer = 0

    def node(length: Int): Unit = {
      batch.nodeLengths(node) = length
      node += 1
    }

    def buffer(bytes: LayoutBuffer): Unit = add(bytes.bytes, bytes.size)

    /** A buffer of zero bytes: for validity, "no nulls". */
    def empty(): Unit = add(EmptyBuffer, 0)

    private def add(bytes: Array[Byte], length: Int): Unit = {
      batch.buffers(buffer) = bytes
      batch.bufferLengths(buffer) = length
      buffer += 1
    }
  }

  private val EmptyBuffer: Array[Byte] = new Array[Byte](0)

}

/**
 * A growable byte array holding one Arrow buffer, little-endian; `size`
 * bytes of it are in use. Every store checks the capacity first (`reserve`).
 */
private[spark] final class LayoutBuffer(initialCapacity: Int, what: => String) {
  var bytes: Array[Byte] = new Array[Byte](math.max(initialCapacity, 64))
  var size: Int = 0

  @inline def reserve(extra: Int): Unit =
    if (bytes.length - size < extra) grow(size.toLong + extra)

  private def grow(needed: Long): Unit = {
    if (needed > LayoutBuffer.MaxBytes) {
      throw new MosaicrsInternalException(
        s"a batch of $what would exceed 2 GiB; lower the mosaicrs option batchRows")
    }
    var capacity = bytes.length.toLong * 2
    while (capacity < needed) capacity *= 2
    bytes = java.util.Arrays.copyOf(bytes, math.min(capacity, LayoutBuffer.MaxBytes.toLong).toInt)
  }

  @inline def putByte(v: Byte): Unit = { reserve(1); bytes(size) = v; size += 1 }
  @inline def putShort(v: Short): Unit = { reserve(2); LittleEndian.putShort(bytes, size, v); size += 2 }
  @inline def putInt(v: Int): Unit = { reserve(4); LittleEndian.putInt(bytes, size, v); size += 4 }
  @inline def putLong(v: Long): Unit = { reserve(8); LittleEndian.putLong(bytes, size, v); size += 8 }
  @inline def putFloat(v: Float): Unit = { reserve(4); LittleEndian.putFloat(bytes, size, v); size += 4 }
  @inline def putDouble(v: Double): Unit = {
    reserve(8); LittleEndian.putDouble(bytes, size, v); size += 8
  }

  def putBytes(from: Array[Byte]): Unit = {
    reserve(from.length)
    System.arraycopy(from, 0, bytes, size, from.length)
    size += from.length
  }

  def putBytes(from: ByteBuffer): Unit = {
    val n = from.remaining
    reserve(n)
    from.get(bytes, size, n)
    size += n
  }

  /** `n` zero bytes (the array past `size` may hold an earlier batch's bytes). */
  def putZeros(n: Int): Unit = {
    reserve(n)
    java.util.Arrays.fill(bytes, size, size + n, 0.toByte)
    size += n
  }

  def reset(): Unit = size = 0
}

private[spark] object LayoutBuffer {
  val MaxBytes: Int = Int.MaxValue - 64
}

/**
 * An Arrow bitmap (validity or boolean values) of `length` bits. While every
 * bit is set it stores nothing; the first unset bit (or [[materialise]])
 * writes out the set bits before it, so a column without nulls costs one
 * counter increment per value.
 */
private[spark] final class BitmapBuffer(initialBits: Int, what: => String) {
  val bytes = new LayoutBuffer((initialBits + 7) / 8, what)
  var length = 0
  var unset = 0
  /** Whether `bytes` holds the bits (else they are `length` set bits). */
  private var stored = false

  @inline def appendSet(): Unit = {
    if (stored) {
      val i = length
      if ((i & 7) == 0) bytes.putByte(0)
      val at = i >>> 3
      bytes.bytes(at) = (bytes.bytes(at) | (1 << (i & 7))).toByte
    }
    length += 1
  }

  def appendUnset(): Unit = {
    materialise()
    if ((length & 7) == 0) bytes.putByte(0)
    length += 1
    unset += 1
  }

  @inline def append(bit: Boolean): Unit = if (bit) appendSet() else appendUnset()

  /** Appends `n` set bits. */
  def appendSet(n: Int): Unit =
    if (stored) {
      var i = 0
      while (i < n) { appendSet(); i += 1 }
    } else length += n

  /** Turns the last bit off (a value that turned out to be null). */
  def clearLast(): Unit = {
    materialise()
    val i = length - 1
    val at = i >>> 3
    bytes.bytes(at) = (bytes.bytes(at) & ~(1 << (i & 7))).toByte
    unset += 1
  }

  /** Stores the bits in `bytes` (`length` set bits, while nothing is stored yet). */
  def materialise(): Unit = if (!stored) {
    val full = length >>> 3
    bytes.reset()
    bytes.reserve(full + 1)
    java.util.Arrays.fill(bytes.bytes, 0, full, 0xff.toByte)
    bytes.size = full
    if ((length & 7) != 0) bytes.putByte(((1 << (length & 7)) - 1).toByte)
    stored = true
  }

  def reset(): Unit = {
    bytes.reset()
    length = 0
    unset = 0
    stored = false
  }
}

/** Appends one column (or nested field) of rows into its Arrow buffers. */
private[spark] abstract class ColumnWriter(val name: String, initialRows: Int) {
  final val validity = new BitmapBuffer(initialRows, name)
  final var length = 0

  /** Appends value `ordinal` of `in` (a row, struct or array). */
  def write(in: SpecializedGetters, ordinal: Int): Unit

  /** Appends a null: the field of a null struct. */
  def appendNull(): Unit

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

/** A writer whose values go through one `writeValue`/`writeNull` pair: nested and rarer types. */
private[spark] abstract class GenericWriter(name: String, initialRows: Int)
    extends ColumnWriter(name, initialRows) {

  final override def write(in: SpecializedGetters, ordinal: Int): Unit = {
    if (in.isNullAt(ordinal)) {
      validity.appendUnset()
      writeNull()
    } else {
      validity.appendSet()
      writeValue(in, ordinal)
    }
    length += 1
  }

  final override def appendNull(): Unit = {
    validity.appendUnset()
    writeNull()
    length += 1
  }

  protected def writeValue(in: SpecializedGetters, ordinal: Int): Unit
  protected def writeNull(): Unit
}

private[spark] object ColumnWriter {

  /** The writer of a field of `dataType` (one of the types [[MosaicrsTypes]] accepts). */
  def apply(name: String, dataType: DataType, rows: Int): ColumnWriter = dataType match {
    case NullType => new NullWriter(name, rows)
    case BooleanType => new BooleanWriter(name, rows)
    case ByteType => new ByteWriter(name, rows)
    case ShortType => new ShortWriter(name, rows)
    case IntegerType | DateType => new IntWriter(name, rows)
    case LongType | TimestampType | TimestampNTZType => new LongWriter(name, rows)
    case FloatType => new FloatWriter(name, rows)
    case DoubleType => new DoubleWriter(name, rows)
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
private[spark] final class NullWriter(name: String, rows: Int) extends GenericWriter(name, rows) {
  override protected def writeValue(in: SpecializedGetters, o: Int): Unit = ()
  override protected def writeNull(): Unit = ()
  override def nodeCount: Int = 1
  override def bufferCount: Int = 0
  override def exportTo(cursor: ArrowLayoutWriter.Cursor): Unit = cursor.node(length)
  override def bytesUsed: Long = 0
  override protected def resetData(): Unit = ()
}

private[spark] final class BooleanWriter(name: String, rows: Int) extends GenericWriter(name, rows) {
  private val values = new BitmapBuffer(rows, name)
  override protected def writeValue(in: SpecializedGetters, o: Int): Unit =
    values.append(in.getBoolean(o))
  override protected def writeNull(): Unit = values.append(false)
  override def nodeCount: Int = 1
  override def bufferCount: Int = 2
  override def exportTo(cursor: ArrowLayoutWriter.Cursor): Unit = {
    exportValidity(cursor)
    values.materialise()
    cursor.buffer(values.bytes)
  }
  override def bytesUsed: Long = validity.bytes.size.toLong + values.bytes.size
  override protected def resetData(): Unit = values.reset()
}

/**
 * Fixed-width values (`width` bytes each); nulls hold zeros. The common
 * types have their own final class whose `write` reads and stores the value
 * directly (one virtual call per value, no boxing).
 */
private[spark] abstract class FixedWriter(name: String, rows: Int, final val width: Int)
    extends ColumnWriter(name, rows) {
  private[spark] final val values = new LayoutBuffer(rows * width, name)

  final override def appendNull(): Unit = {
    validity.appendUnset()
    values.putZeros(width)
    length += 1
  }
  override def nodeCount: Int = 1
  override def bufferCount: Int = 2
  override def exportTo(cursor: ArrowLayoutWriter.Cursor): Unit = {
    exportValidity(cursor)
    cursor.buffer(values)
  }
  override def bytesUsed: Long = validity.bytes.size.toLong + values.size
  override protected def resetData(): Unit = values.reset()
}

private[spark] final class ByteWriter(name: String, rows: Int) extends FixedWriter(name, rows, 1) {
  override def write(in: SpecializedGetters, o: Int): Unit =
    if (in.isNullAt(o)) appendNull()
    else { values.putByte(in.getByte(o)); validity.appendSet(); length += 1 }
}

private[spark] final class ShortWriter(name: String, rows: Int) extends FixedWriter(name, rows, 2) {
  override def write(in: SpecializedGetters, o: Int): Unit =
    if (in.isNullAt(o)) appendNull()
    else { values.putShort(in.getShort(o)); validity.appendSet(); length += 1 }
}

private[spark] final class IntWriter(name: String, rows: Int) extends FixedWriter(name, rows, 4) {
  override def write(in: SpecializedGetters, o: Int): Unit =
    if (in.isNullAt(o)) appendNull()
    else { values.putInt(in.getInt(o)); validity.appendSet(); length += 1 }
}

private[spark] final class LongWriter(name: String, rows: Int) extends FixedWriter(name, rows, 8) {
  override def write(in: SpecializedGetters, o: Int): Unit =
    if (in.isNullAt(o)) appendNull()
    else { values.putLong(in.getLong(o)); validity.appendSet(); length += 1 }
}

private[spark] final class FloatWriter(name: String, rows: Int) extends FixedWriter(name, rows, 4) {
  override def write(in: SpecializedGetters, o: Int): Unit =
    if (in.isNullAt(o)) appendNull()
    else { values.putFloat(in.getFloat(o)); validity.appendSet(); length += 1 }
}

private[spark] final class DoubleWriter(name: String, rows: Int) extends FixedWriter(name, rows, 8) {
  override def write(in: SpecializedGetters, o: Int): Unit =
    if (in.isNullAt(o)) appendNull()
    else { values.putDouble(in.getDouble(o)); validity.appendSet(); length += 1 }
}

/**
 * Decimal128: the unscaled value as 16 bytes, little-endian two's complement.
 * A value that does not fit `decimal(precision, scale)` is stored as null,
 * as Spark's own Arrow conversion does.
 */
private[spark] final class DecimalWriter(name: String, rows: Int, precision: Int, scale: Int)
    extends FixedWriter(name, rows, 16) {
  override def write(in: SpecializedGetters, o: Int): Unit =
    if (in.isNullAt(o)) appendNull()
    else {
      validity.appendSet()
      length += 1
      writeValue(in.getDecimal(o, precision, scale))
    }

  private def writeValue(decimal: Decimal): Unit = {
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
        values.bytes(values.size + i) = if (fromEnd >= 0) big(fromEnd) else sign
        i += 1
      }
      values.size += 16
    }
  }
}

/** Utf8 and Binary: 32-bit offsets and the bytes. */
private[spark] abstract class VarWriter(name: String, rows: Int) extends GenericWriter(name, rows) {
  protected final val offsets = new LayoutBuffer((rows + 1) * 4, name)
  protected final val values = new LayoutBuffer(rows * 16, name)
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
    extends GenericWriter(name, rows) {
  private val offsets = new LayoutBuffer((rows + 1) * 4, name)
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
    extends GenericWriter(name, rows) {
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
    extends GenericWriter(name, rows) {
  private val offsets = new LayoutBuffer((rows + 1) * 4, name)
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
