package io.mosaicrs.spark

import io.mosaicrs.spark.jni.MosaicrsInvalidInputException

import org.apache.spark.sql.types._
import org.junit.Assert._
import org.junit.Test

/** The Spark-type-to-Arrow mapping: the description the native library builds the schema from. */
class MosaicrsTypesTest {
  private val nested = StructType(Seq(
    StructField("id", LongType, nullable = false),
    StructField("tags", ArrayType(StringType, containsNull = false)),
    StructField("m", MapType(StringType, DecimalType(20, 4), valueContainsNull = false)),
    StructField("s", StructType(Seq(StructField("ts", TimestampType), StructField("d", DateType))))))

  @Test def theDescriptionIsThePreOrderOfTheTypes(): Unit = {
    val d = MosaicrsTypes.describe(nested)
    val k = SparkKind
    assertArrayEquals(
      Array(k.Long, k.Array, k.String, k.Map, k.String, k.Decimal, k.Struct, k.Timestamp, k.Date),
      d.kinds)
    assertArrayEquals(Array(0, 0, 0, 0, 0, 20, 2, 0, 0), d.a)
    assertArrayEquals(Array(0, 0, 0, 0, 0, 4, 0, 0, 0), d.b)
    assertArrayEquals(
      Array[Object]("id", "tags", "element", "m", "key", "value", "s", "ts", "d"),
      d.names.asInstanceOf[Array[Object]])
  }

  @Test def everyLeafTypeHasItsKind(): Unit = {
    val leaves = Seq(
      NullType -> SparkKind.Null, BooleanType -> SparkKind.Boolean, ByteType -> SparkKind.Byte,
      ShortType -> SparkKind.Short, IntegerType -> SparkKind.Int, LongType -> SparkKind.Long,
      FloatType -> SparkKind.Float, DoubleType -> SparkKind.Double, DecimalType(38, 0) -> SparkKind.Decimal,
      StringType -> SparkKind.String, BinaryType -> SparkKind.Binary, DateType -> SparkKind.Date,
      TimestampType -> SparkKind.Timestamp, TimestampNTZType -> SparkKind.TimestampNtz)
    for ((t, kind) <- leaves) {
      assertArrayEquals(t.sql, Array(kind), MosaicrsTypes.describe(StructType(Seq(StructField("c", t)))).kinds)
    }
  }

  @Test def unsupportedTypesAreRefusedNamingTheColumn(): Unit = {
    val schema = StructType(Seq(
      StructField("ok", IntegerType),
      StructField("s", StructType(Seq(StructField("i", CalendarIntervalType))))))
    val e = assertThrows(classOf[MosaicrsInvalidInputException], () => MosaicrsTypes.check(schema))
    assertTrue(e.getMessage, e.getMessage.contains("`s.i`") && e.getMessage.contains("INTERVAL"))
    assertThrows(classOf[MosaicrsInvalidInputException], () => MosaicrsTypes.check(new StructType()))
    MosaicrsTypes.check(nested)
  }

  @Test def storedSchemasAreNullableThroughout(): Unit = {
    val rows = MosaicrsTypes.nullable(nested)
    assertTrue(rows.fields.forall(_.nullable))
    assertEquals(ArrayType(StringType, containsNull = true), rows("tags").dataType)
    assertEquals(MapType(StringType, DecimalType(20, 4), valueContainsNull = true), rows("m").dataType)
  }
}
