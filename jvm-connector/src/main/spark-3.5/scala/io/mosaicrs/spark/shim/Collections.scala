package io.mosaicrs.spark.shim

import scala.collection.JavaConverters._

/** Scala 2.12's converters between Java and Scala collections (2.13 renamed them). */
object Collections {
  def toJava[A](set: Set[A]): java.util.Set[A] = set.asJava

  def toJava[K, V](map: Map[K, V]): java.util.Map[K, V] = map.asJava

  def toScala(map: java.util.Map[String, String]): Map[String, String] = map.asScala.toMap
}
