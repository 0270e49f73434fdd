package io.mosaicrs.spark.read

import java.nio.charset.StandardCharsets
import java.nio.file.{Files, Path}
import java.util.Collections

import io.mosaicrs.spark.{ArrowLayoutWriter, MosaicrsOptions, MosaicrsTypes, MosaicrsWriteJob, NativeShardWriter}
import io.mosaicrs.spark.jni._

import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.catalyst.util.GenericArrayData
import org.apache.spark.sql.types._
import org.apache.spark.unsafe.types.UTF8String
import org.junit.Assert._
import org.junit.{After, Test}

/**
 * Rows through the real native library without Spark running: the Spark
 * schema to Arrow and back, a write, a commit, a scan; and the exception
 * class that each kind of native error arrives as.
 */
class NativeRoundTripTest {
  private val root: Path = Files.createTempDirectory("mosaicrs-jvm-test")

  @After def cleanUp(): Unit = {
    val files = Files.walk(root)
    try files.sorted(java.util.Comparator.reverseOrder[Path]()).forEach(p => Files.delete(p))
    finally files.close()
  }

  private def location(name: String): DatasetLocation =
    new DatasetLocation(root.resolve(name).toString, Collections.emptyMap[String, String]())

  private val schema = StructType(Seq(
    StructField("id", LongType),
    StructField("name", StringType),
    StructField("tags", ArrayType(IntegerType)),
    StructField("price", DecimalType(10, 2)),
    StructField("attrs", MapType(StringType, DoubleType)),
    StructField("at", TimestampNTZType)))

  /** Writes `rows` rows with the connector's writer and commits them. */
  private def write(at: DatasetLocation, rows: Int, mode: SaveMode): CommitOutcome = {
    val options = MosaicrsOptions.parse(Map("path" -> at.url, "batchRows" -> "64"))
    val job = MosaicrsWriteJob.plan(schema, options, mode)
    val writer = NativeShardWriter.open(job, 0, 0)
    val layout = new ArrowLayoutWriter(job.sparkSchema, options.batchRows)
    for (i <- 0 until rows) {
      layout.write(InternalRow(
        i.toLong,
        if (i % 3 == 0) null else UTF8String.fromString(s"row $i"),
        new GenericArrayData(Array[Any](i, i + 1)),
        Decimal(BigDecimal(i) / 100, 10, 2),
        null,
        i * 1000000L))
      if (layout.rows == options.batchRows) {
        writer.write(layout.rows, layout.batch())
        layout.reset()
      }
    }
    if (layout.rows > 0) writer.write(layout.rows, layout.batch())
    val shards = writer.finish()
    assertFalse(writer.isOpen)
    writer.abort() // a no-op once finished
    NativeBridge.commit(job.location, job.storedSchema, job.writeId, shards, job.saveMode, false)
  }

  @Test def rowsRoundTripThroughTheNativeLibrary(): Unit = {
    val at = location("ds")
    val outcome = write(at, 150, SaveMode.ERROR_IF_EXISTS)
    assertTrue(outcome.committed)
    assertEquals(150L, outcome.totalRows)

    val snapshot = DatasetSnapshot.describe(at, 64L << 20)
    // Spark type -> Arrow (native) -> index -> Spark type: the nullable schema comes back.
    assertEquals(MosaicrsTypes.nullable(schema), snapshot.schema())
    assertEquals(150L, snapshot.totalRows())
    val partitions = snapshot.partitions()
    assertEquals(1, partitions.length)
    assertEquals(0, partitions(0).firstBatch)
    assertEquals(3, partitions(0).endBatch)
    assertEquals(150L, partitions(0).rows)
    assertEquals(Compression.NONE, partitions(0).shard.compression)

    val reader = new MosaicrsPartitionReader(at, snapshot.arrowSchema(), snapshot.schema(), partitions(0))
    var seen = 0
    try {
      while (reader.next()) {
        val batch = reader.get()
        for (r <- 0 until batch.numRows()) {
          val i = seen + r
          val row = batch.getRow(r)
          assertEquals(i.toLong, row.getLong(0))
          if (i % 3 == 0) assertTrue(row.isNullAt(1)) else assertEquals(s"row $i", row.getUTF8String(1).toString)
          assertEquals(i + 1, row.getArray(2).getInt(1))
          assertEquals(Decimal(BigDecimal(i) / 100, 10, 2), row.getDecimal(3, 10, 2))
          assertTrue(row.isNullAt(4))
          assertEquals(i * 1000000L, row.getLong(5))
        }
        seen += batch.numRows()
      }
    } finally reader.close()
    assertEquals(150, seen)
    reader.close() // closing twice is a no-op
  }

  @Test def ioErrorsArriveAsIOExceptions(): Unit = {
    val missing = location("nothing-here")
    val e = assertThrows(classOf[MosaicrsIOException], () => DatasetSnapshot.describe(missing, 1L << 20))
    assertTrue(e.getMessage, e.getMessage.contains(missing.url) && e.getMessage.contains("index.json"))

    val corrupt = location("corrupt")
    write(corrupt, 10, SaveMode.ERROR_IF_EXISTS)
    Files.write(root.resolve("corrupt").resolve("index.json"), "{not json".getBytes(StandardCharsets.UTF_8))
    val c = assertThrows(classOf[MosaicrsIOException], () => DatasetSnapshot.describe(corrupt, 1L << 20))
    assertTrue(c.getMessage, c.getMessage.contains("invalid index"))
  }

  @Test def badInputArrivesAsInvalidInput(): Unit = {
    val at = location("existing")
    write(at, 10, SaveMode.ERROR_IF_EXISTS)
    // Creating over a dataset, and appending another schema, are the caller's mistakes.
    assertThrows(classOf[MosaicrsInvalidInputException], () => write(at, 10, SaveMode.ERROR_IF_EXISTS))
    val other = MosaicrsTypes.arrowSchemaBase64(StructType(Seq(StructField("x", IntegerType))))
    val e = assertThrows(classOf[MosaicrsInvalidInputException], () => NativeBridge.checkAppendSchema(at, other, false))
    assertTrue(e.getMessage, e.getMessage.toLowerCase.contains("schema"))
    // An append of the same schema adds its rows; ignore keeps the dataset.
    assertEquals(20L, write(at, 10, SaveMode.APPEND).totalRows)
    assertFalse(write(at, 10, SaveMode.IGNORE).committed)
  }

  @Test def closedHandlesAreInternalErrorsAndCloseIsIdempotent(): Unit = {
    val e = assertThrows(classOf[MosaicrsInternalException], () => NativeBridge.finishWriter(0L))
    assertTrue(e.getMessage, e.getMessage.contains("already closed"))
    NativeBridge.abortWriter(0L)
    NativeScan.closeScan(0L)
    assertThrows(classOf[MosaicrsInternalException], () => NativeScan.nextBatch(0L))
  }
}
