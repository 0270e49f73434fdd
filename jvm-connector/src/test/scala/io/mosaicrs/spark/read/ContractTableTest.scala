package io.mosaicrs.spark.read

import java.lang.reflect.Modifier

import io.mosaicrs.spark.SparkKind
import io.mosaicrs.spark.jni._

import org.junit.Assert._
import org.junit.Test

/**
 * Holds the JVM's constants against the native library's table
 * (`NativeBridge.contractTable`, from jvm-connector/native/src/contract.rs):
 * a kind, ordinal, stride or exception class changed on one side alone fails here.
 */
class ContractTableTest {
  private val table: Map[String, String] = NativeBridge.contractTable().toSeq.map { line =>
    val eq = line.indexOf('=')
    assertTrue(s"not a table line: $line", eq > 0)
    line.substring(0, eq) -> line.substring(eq + 1)
  }.toMap

  private def group(name: String): Map[String, String] =
    table.collect { case (key, value) if key.startsWith(name + ".") => key.stripPrefix(name + ".") -> value }

  @Test def theTableHasOneValuePerKey(): Unit = {
    assertEquals(NativeBridge.contractTable().length, table.size)
  }

  @Test def sparkKindsHaveTheNativeCodes(): Unit = {
    val jvm = SparkKind.getClass.getDeclaredMethods.toSeq
      .filter(m => m.getParameterCount == 0 && m.getReturnType == classOf[Int] && Modifier.isPublic(m.getModifiers))
      .map(m => m.getName -> m.invoke(SparkKind).toString)
      .toMap
    assertEquals(17, jvm.size)
    assertEquals(group("kind"), jvm)
    assertEquals("14", table("kind.Array"))
    assertEquals(SparkKind.Map.toString, table("kind.Map"))
  }

  @Test def enumsHaveTheNativeNamesInTheNativeOrder(): Unit = {
    assertEquals(group("compression"), Compression.values().toSeq.map(c => c.name -> c.ordinal.toString).toMap)
    assertEquals(group("saveMode"), SaveMode.values().toSeq.map(m => m.name -> m.ordinal.toString).toMap)
    assertEquals(3, group("compression").size)
    assertEquals(4, group("saveMode").size)
  }

  @Test def scanStridesAreTheNativeOnes(): Unit = {
    assertEquals(table("scan.nodeStride"), NativeScan.NODE_STRIDE.toString)
    assertEquals(table("scan.bufferStride"), NativeScan.BUFFER_STRIDE.toString)
  }

  @Test def errorsBecomeTheConnectorExceptions(): Unit = {
    val expected = Map(
      "InvalidInput" -> classOf[MosaicrsInvalidInputException],
      "Io" -> classOf[MosaicrsIOException],
      "Conflict" -> classOf[MosaicrsConflictException],
      "VersionNotFound" -> classOf[MosaicrsVersionNotFoundException],
      "Internal" -> classOf[MosaicrsInternalException])
    assertEquals(group("exception"), expected.map { case (k, c) => k -> c.getName.replace('.', '/') })
    // The native side throws them with a (String) constructor.
    expected.values.foreach(c => assertNotNull(c.getConstructor(classOf[String])))
    // A lost commit race is an I/O error to callers that catch those.
    assertTrue(classOf[MosaicrsIOException].isAssignableFrom(classOf[MosaicrsConflictException]))
    assertTrue(classOf[MosaicrsIOException].isAssignableFrom(classOf[MosaicrsVersionNotFoundException]))
    assertTrue(classOf[IllegalArgumentException].isAssignableFrom(classOf[MosaicrsInvalidInputException]))
  }
}
