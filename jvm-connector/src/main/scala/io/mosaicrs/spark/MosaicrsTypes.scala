package io.mosaicrs.spark

import java.io.ByteArrayOutputStream
import java.nio.channels.Channels
import java.util.Base64

import io.mosaicrs.spark.jni.MosaicrsInvalidInputException
import org.apache.arrow.vector.ipc.{ArrowStreamWriter, WriteChannel}
import org.apache.arrow.vector.ipc.message.{IpcOption, MessageSerializer}

import org.apache.spark.sql.mosaicrs.SparkInternals
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
 * | map<K, V>                | Map<K, V>                              |
 * | user-defined type        | its SQL type, by the rules above       |
 *
 * Intervals, variant and any other type are refused on the driver, before
 * a task runs, with the column (nested path) and the type in the message.
 * Every column, element and value is stored as nullable, as Spark's file
 * sources do, so that appends do not fail on nullability alone.
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
    schema.fields.iterator.flatMap(f => firstUnsupported(f.name, f.dataType)).nextOption().foreach {
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
        fields.iterator.flatMap(f => firstUnsupported(s"$path.${f.name}", f.dataType)).nextOption()
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
    val arrow = SparkInternals.toArrowSchema(schema)
    val bytes = new ByteArrayOutputStream()
    val channel = new WriteChannel(Channels.newChannel(bytes))
    MessageSerializer.serialize(channel, arrow)
    ArrowStreamWriter.writeEndOfStream(channel, IpcOption.DEFAULT)
    Base64.getEncoder.encodeToString(bytes.toByteArray)
  }
}
