package io.mosaicrs.spark.shim

import java.util

import org.apache.spark.sql.connector.catalog.{Identifier, Table, TableCatalog}
import org.apache.spark.sql.connector.expressions.Transform
import org.apache.spark.sql.types.StructType

/**
 * Spark 3.5's table creation: Spark calls `createTable` with a StructType
 * (Spark 4 calls the Column[] form, whose StructType form is deprecated).
 */
abstract class CatalogShim extends TableCatalog {

  /** Creates the table of `ident` with `schema`. */
  protected def create(
      ident: Identifier,
      schema: StructType,
      partitions: Array[Transform],
      properties: util.Map[String, String]): Table

  override def createTable(
      ident: Identifier,
      schema: StructType,
      partitions: Array[Transform],
      properties: util.Map[String, String]): Table =
    create(ident, schema, partitions, properties)
}
