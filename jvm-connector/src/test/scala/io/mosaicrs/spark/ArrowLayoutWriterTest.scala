package io.mosaicrs.spark

import java.nio.{ByteBuffer, ByteOrder}

import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.types._
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
}
