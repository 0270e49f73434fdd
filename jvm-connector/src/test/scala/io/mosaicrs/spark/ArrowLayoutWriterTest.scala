package io.mosaicrs.spark

import java.nio.{ByteBuffer, ByteOrder}

import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.catalyst.expressions.UnsafeProjection
import org.apache.spark.sql.types._
import org.apache.spark.unsafe.types.UTF8String
import org.junit.Assert._
import org.junit.Test

/**
 * The buffers [[ArrowLayoutWriter]] lays out, byte by byte: fixed-width
 * values little-endian, validity bitmaps that stay empty until the first
 * null and then hold every bit before it, boolean values as a bitmap.
 */
class ArrowLayoutWriterTest {
  private val schema = StructType(Seq(
    StructField("f", FloatType),
    StructField("b", BooleanType),
    StructField("s", ShortType),
    StructField("d", DoubleType)))

  private def used(batch: ArrowLayoutWriter.Batch, i: Int): Array[Byte] =
    java.util.Arrays.copyOf(batch.buffers(i), batch.bufferLengths(i))

  @Test def bitmapsStayEmptyUntilTheFirstUnsetBit(): Unit = {
    val writer = new ArrowLayoutWriter(schema, 16)
    for (i <- 0 until 12) {
      writer.write(InternalRow(
        if (i == 10) null else i.toFloat * 0.5f,
        i != 9,
        i.toShort,
        if (i == 11) null else i.toDouble))
    }
    val batch = writer.batch()
    assertArrayEquals(Array(12, 12, 12, 12), batch.nodeLengths)
    // f: validity (bit 10 unset), values with a zero at row 10
    assertArrayEquals(Array(0xff.toByte, 0x0b.toByte), used(batch, 0))
    val f = ByteBuffer.wrap(used(batch, 1)).order(ByteOrder.LITTLE_ENDIAN)
    assertEquals(48, f.limit())
    assertEquals(4.5f, f.getFloat(9 * 4), 0f)
    assertEquals(0f, f.getFloat(10 * 4), 0f)
    assertEquals(5.5f, f.getFloat(11 * 4), 0f)
    // b: no nulls (empty validity), values false only at row 9
    assertEquals(0, batch.bufferLengths(2))
    assertArrayEquals(Array(0xff.toByte, 0x0d.toByte), used(batch, 3))
    // s: no nulls, little-endian shorts
    assertEquals(0, batch.bufferLengths(4))
    assertArrayEquals(Array[Byte](0, 0, 1, 0, 2, 0), used(batch, 5).take(6))
    // d: the null is the last row
    assertArrayEquals(Array(0xff.toByte, 0x07.toByte), used(batch, 6))
    assertEquals(10.0, ByteBuffer.wrap(used(batch, 7)).order(ByteOrder.LITTLE_ENDIAN).getDouble(80), 0.0)

    // After a reset the bitmaps are lazy again and old bytes do not leak in.
    writer.reset()
    for (i <- 0 until 3) writer.write(InternalRow(1f, true, 7.toShort, if (i == 2) null else 2.0))
    val next = writer.batch()
    assertEquals(0, next.bufferLengths(0))
    assertArrayEquals(Array(0x07.toByte), used(next, 3))
    assertArrayEquals(Array(0x03.toByte), used(next, 6))
    assertArrayEquals(new Array[Byte](8), used(next, 7).drop(16))
  }

  /**
   * Fixed-width columns copied from `UnsafeRow` slots give the same buffers
   * as the typed getters of generic rows, with nulls (zeros in the values),
   * null bits past the first 64-bit word, and rows of both kinds in one batch.
   */
  @Test def unsafeRowSlotsMatchTheGetters(): Unit = {
    val fixed = Seq(ByteType, ShortType, IntegerType, DateType, LongType, TimestampType, FloatType,
      DoubleType)
    val fields = (0 until 70).map { i =>
      StructField(s"c$i", if (i == 3) StringType else fixed(i % fixed.length))
    }
    val wide = StructType(fields)
    def value(field: Int, row: Int): Any =
      if ((field == 5 && row % 3 == 0) || (field == 66 && row == 7)) null
      else wide(field).dataType match {
        case ByteType => (row - field).toByte
        case ShortType => (row * 1000 - field).toShort
        case IntegerType | DateType => row * 100003 - field
        case LongType | TimestampType => row.toLong * 1000000007L - field
        case FloatType => row * 0.25f - field
        case DoubleType => row * -1.5 + field
        case StringType => UTF8String.fromString(s"r$row")
        case other => throw new AssertionError(other)
      }
    val rows = (0 until 20).map(r => InternalRow.fromSeq(fields.indices.map(value(_, r))))
    val toUnsafe = UnsafeProjection.create(wide)

    def buffers(rowOf: (InternalRow, Int) => InternalRow): Seq[Seq[Byte]] = {
      val writer = new ArrowLayoutWriter(wide, 4)
      rows.zipWithIndex.foreach { case (row, r) => writer.write(rowOf(row, r)) }
      val batch = writer.batch()
      assertTrue(batch.nodeLengths.forall(_ == rows.length))
      batch.buffers.indices.map(i => used(batch, i).toSeq)
    }
    // The reference: each column's own writer, called value by value.
    val columns = fields.map(f => ColumnWriter(f.name, f.dataType, 4))
    for (row <- rows; i <- columns.indices) columns(i).write(row, i)
    val reference = ArrowLayoutWriter.Batch(
      new Array[Int](columns.map(_.nodeCount).sum),
      new Array[Array[Byte]](columns.map(_.bufferCount).sum),
      new Array[Int](columns.map(_.bufferCount).sum))
    val cursor = new ArrowLayoutWriter.Cursor(reference)
    columns.foreach(_.exportTo(cursor))
    val generic = reference.buffers.indices.map(i => used(reference, i).toSeq)

    assertEquals(generic, buffers((row, _) => row))
    assertEquals(generic, buffers((row, _) => toUnsafe(row).copy()))
    assertEquals(generic, buffers((row, r) => if (r % 2 == 0) toUnsafe(row).copy() else row))

    // Column 5 (TimestampType; buffers 11, 12): null every third row, its value zero there.
    assertArrayEquals(Array(0xb6.toByte, 0x6d.toByte, 0x0b.toByte), generic(11).toArray)
    val c5 = ByteBuffer.wrap(generic(12).toArray).order(ByteOrder.LITTLE_ENDIAN)
    assertEquals(0L, c5.getLong(3 * 8))
    assertEquals(4L * 1000000007L - 5, c5.getLong(4 * 8))
    // Column 66 (IntegerType, null bit in the second word): null at row 7 only.
    assertArrayEquals(Array(0x7f.toByte, 0xff.toByte, 0x0f.toByte), generic(66 * 2 + 1).toArray)
    // Column 3 (the string): written row by row, between the slot columns.
    val text = generic(8).toArray
    assertEquals("r0r1r2", new String(text.take(6), "UTF-8"))
  }
}
