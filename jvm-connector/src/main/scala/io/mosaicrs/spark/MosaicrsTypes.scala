package io.mosaicrs.spark

import scala.collection.mutable.ArrayBuffer

import io.mosaicrs.spark.jni.{MosaicrsInvalidInputException, NativeBridge}

import org.apache.spark.sql.types._

/**
 * Which Spark SQL types a dataset can hold, and the dataset's Arrow schema.
 *
 * | Spark                    | Arrow                                  |
 * |--------------------------|----------------------------------------|
 * | boolean                  | Bool                                   |
 * | tinyint/smallint/int/bigint | Int8 / Int16 / Int32 / Int64        |
 * | float / double           | Float32 / Float64                      |
 * | decimal(p, s)            | Decimal128(p, s)                       |
 * | string                   | Utf8                                   |
 * | binary                   | Binary                                 |
 * | date                     | Date32 (days)                          |
 * | timestamp                | Timestamp(us, "UTC")                   |
 * | timestamp_ntz            | Timestamp(us)                          |
 * | void (null)              | Null                                   |
 * | array<T>                 | List<T>                                |
 * | struct<...>              | Struct                                 |
 * | map<K, V>                | Map<entries: Struct<key: K, value: V>> |
 * | user-defined type        | its SQL type, by the rules above       |
 *
 * Intervals, variant and any other type are refused on the driver, before
 * a task runs, with the column (nested path) and the type in the message.
 * Every column, element and value is stored as nullable, as Spark's file
 * sources do, so that appends do not fail on nullability alone. The mapping
 * is the one Spark's own Arrow conversion used when earlier connector
 * versions wrote datasets, so their schemas still match for appends; the
 * native library builds the Arrow schema from [[describe]].
 */
object MosaicrsTypes {

  private val SupportedList =
    "boolean, tinyint, smallint, int, bigint, float, double, decimal, string, binary, date, " +
      "timestamp, timestamp_ntz, void, and arrays, structs and maps of these"

  /**
   * Fails, naming the column and its type, unless every column can be stored.
   *
   * @throws MosaicrsInvalidInputException for the first unsupported column
   */
  def check(schema: StructType): Unit = {
    if (schema.isEmpty) {
      throw new MosaicrsInvalidInputException(
        "mosaicrs cannot write a DataFrame without columns")
    }
    schema.fields.iterator.map(f => firstUnsupported(f.name, f.dataType)).collectFirst {
      case Some(found) => found
    }.foreach {
      case (path, dataType) =>
        throw new MosaicrsInvalidInputException(
          s"mosaicrs cannot store column `$path` of type ${dataType.sql}: the supported types " +
            s"are $SupportedList. Cast the column (for example to a number or a string) or " +
            "drop it before writing")
    }
  }

  /** The first (path, type) under `path` that has no Arrow form in mosaicrs. */
  private def firstUnsupported(path: String, dataType: DataType): Option[(String, DataType)] =
    dataType match {
      case BooleanType | ByteType | ShortType | IntegerType | LongType | FloatType | DoubleType |
          BinaryType | DateType | TimestampType | TimestampNTZType | NullType =>
        None
      case _: DecimalType | _: StringType => None
      case ArrayType(element, _) => firstUnsupported(s"$path.element", element)
      case MapType(key, value, _) =>
        firstUnsupported(s"$path.key", key).orElse(firstUnsupported(s"$path.value", value))
      case StructType(fields) =>
        fields.iterator.map(f => firstUnsupported(s"$path.${f.name}", f.dataType)).collectFirst {
          case Some(found) => found
        }
      case udt: UserDefinedType[_] => firstUnsupported(path, udt.sqlType)
      case other => Some(path -> other)
    }

  /** `schema` with every column, element and map value nullable. */
  def nullable(schema: StructType): StructType =
    StructType(schema.fields.map(f => f.copy(dataType = nullableType(f.dataType), nullable = true)))

  private def nullableType(dataType: DataType): DataType = dataType match {
    case ArrayType(element, _) => ArrayType(nullableType(element), containsNull = true)
    case MapType(key, value, _) =>
      MapType(nullableType(key), nullableType(value), valueContainsNull = true)
    case s: StructType => nullable(s)
    case other => other
  }

  /**
   * The dataset's Arrow schema as base64 of an Arrow IPC schema stream: the
   * encoding the index uses, and the form the native library takes.
   */
  def arrowSchemaBase64(schema: StructType): String = {
    val d = describe(schema)
    NativeBridge.arrowSchema(d.kinds, d.a, d.b, d.names)
  }

  /**
   * A typed description of `schema` for the native library: one entry per
   * type node in pre-order, with a [[SparkKind]], two parameters (decimal
   * precision and scale; a struct's field count) and the field name.
   */
  final case class Description(kinds: Array[Int], a: Array[Int], b: Array[Int], names: Array[String])

  def describe(schema: StructType): Description = {
    val kinds = ArrayBuffer.empty[Int]
    val as = ArrayBuffer.empty[Int]
    val bs = ArrayBuffer.empty[Int]
    val names = ArrayBuffer.empty[String]
    def add(name: String, kind: Int, a: Int = 0, b: Int = 0): Unit = {
      kinds += kind
      as += a
      bs += b
      names += name
    }
    def node(name: String, dataType: DataType): Unit = dataType match {
      case NullType => add(name, SparkKind.Null)
      case BooleanType => add(name, SparkKind.Boolean)
      case ByteType => add(name, SparkKind.Byte)
      case ShortType => add(name, SparkKind.Short)
      case IntegerType => add(name, SparkKind.Int)
      case LongType => add(name, SparkKind.Long)
      case FloatType => add(name, SparkKind.Float)
      case DoubleType => add(name, SparkKind.Double)
      case d: DecimalType => add(name, SparkKind.Decimal, d.precision, d.scale)
      case _: StringType => add(name, SparkKind.String)
      case BinaryType => add(name, SparkKind.Binary)
      case DateType => add(name, SparkKind.Date)
      case TimestampType => add(name, SparkKind.Timestamp)
      case TimestampNTZType => add(name, SparkKind.TimestampNtz)
      case ArrayType(element, _) =>
        add(name, SparkKind.Array)
        node("element", element)
      case StructType(fields) =>
        add(name, SparkKind.Struct, fields.length)
        fields.foreach(f => node(f.name, f.dataType))
      case MapType(key, value, _) =>
        add(name, SparkKind.Map)
        node("key", key)
        node("value", value)
      case udt: UserDefinedType[_] => node(name, udt.sqlType)
      case other =>
        throw new MosaicrsInvalidInputException(
          s"mosaicrs cannot store column `$name` of type ${other.sql}")
    }
    schema.fields.foreach(f => node(f.name, f.dataType))
    Description(kinds.toArray, as.toArray, bs.toArray, names.toArray)
  }
}

/**
 * The Spark types as the native library numbers them: the codes of
 * `kind.<name>` in the native table of constants (`NativeBridge.contractTable`,
 * from jvm-connector/native/src/contract.rs), which a unit test holds these against.
 */
object SparkKind {
  final val Null = 0
  final val Boolean = 1
  final val Byte = 2
  final val Short = 3
  final val Int = 4
  final val Long = 5
  final val Float = 6
  final val Double = 7
  final val Decimal = 8
  final val String = 9
  final val Binary = 10
  final val Date = 11
  final val Timestamp = 12
  final val TimestampNtz = 13
  final val Array = 14
  final val Struct = 15
  final val Map = 16
}
