package io.mosaicrs.spark

import java.io.{ByteArrayInputStream, ByteArrayOutputStream, ObjectInputStream, ObjectOutputStream}
import java.nio.file.Files

import io.mosaicrs.spark.jni._

import org.junit.Assert._
import org.junit.Test

/** The writer options, parsed by the native library into `WriterSettings`. */
class WriterOptionsTest {
  private def parse(pairs: (String, String)*): WriterSettings =
    NativeBridge.parseWriterOptions(pairs.map(_._1).toArray, pairs.map(_._2).toArray)

  @Test def optionsParseCaseInsensitivelyWithDefaults(): Unit = {
    assertEquals(new WriterSettings(64L << 20, 8192, Compression.NONE), parse())
    // Compressed shards get the writer's smaller default, unless the rows are chosen.
    assertEquals(new WriterSettings(64L << 20, 4096, Compression.ZSTD), parse("compression" -> "zstd"))
    assertEquals(20000, parse("batchRows" -> "20000", "compression" -> "lz4").batchRows)
    assertEquals(
      new WriterSettings(1L << 20, 500, Compression.ZSTD),
      parse("SHARDSIZE" -> "1m", "batchrows" -> " 500 ", "Compression" -> "ZSTD"))
    // Layout options are checked here too, and do not change the settings.
    assertEquals(
      new WriterSettings(2L << 30, 8192, Compression.NONE),
      parse("shardSize" -> "2g", "pack.xy" -> "x,y"))
  }

  @Test def aBadOptionIsInvalidInputNamingIt(): Unit = {
    val cases = Seq(
      ("shardsize2", "1m", "unknown mosaicrs option 'shardsize2'"),
      ("shardSize", "lots", "invalid value 'lots' for mosaicrs option 'shardSize'"),
      ("shardSize", "0", "invalid value '0' for mosaicrs option 'shardSize'"),
      ("compression", "gzip", "invalid value 'gzip' for mosaicrs option 'compression'"),
      ("batchRows", "0", "invalid value '0' for mosaicrs option 'batchRows'"),
      ("BATCHROWS", "many", "invalid value 'many' for mosaicrs option 'batchRows'"))
    for ((key, value, expected) <- cases) {
      val e = assertThrows(classOf[MosaicrsInvalidInputException], () => parse("compression" -> "lz4", key -> value))
      assertTrue(e.getMessage, e.getMessage.contains(expected))
    }
  }

  @Test def sparkOptionsSplitIntoLocationSettingsAndLayout(): Unit = {
    val dir = Files.createTempDirectory("mosaicrs-options")
    try {
      val options = MosaicrsOptions.parse(Map(
        "path" -> dir.toString,
        "compression" -> "lz4",
        "pack.xy" -> "x,y",
        "storage.aws_region" -> "eu-west-1",
        "provider" -> "mosaicrs"))
      assertEquals(dir.toString, options.location.url)
      assertEquals(new WriterSettings(64L << 20, 4096, Compression.LZ4), options.writer)
      assertEquals(4096, options.batchRows)
      assertEquals(Seq("pack.xy" -> "x,y"), options.layout)
      assertTrue(options.location.toString.contains("aws_region"))
      val e = assertThrows(classOf[MosaicrsInvalidInputException],
        () => MosaicrsOptions.parse(Map("path" -> dir.toString, "__partition_columns" -> "[\"x\"]")))
      assertTrue(e.getMessage.contains("partitionBy"))
    } finally Files.delete(dir)
  }

  @Test def settingsTravelToTheExecutorsByJavaSerialization(): Unit = {
    val settings = parse("compression" -> "zstd", "shardSize" -> "1m")
    val bytes = new ByteArrayOutputStream()
    val out = new ObjectOutputStream(bytes)
    out.writeObject(settings)
    out.close()
    val back = new ObjectInputStream(new ByteArrayInputStream(bytes.toByteArray)).readObject()
    assertEquals(settings, back)
    assertSame(Compression.ZSTD, back.asInstanceOf[WriterSettings].compression)
  }
}
