package io.mosaicrs.spark.shim

import java.util

import org.apache.spark.sql.connector.catalog.{Column, Identifier, Table, TableCatalog}
import org.apache.spark.sql.connector.expressions.Transform
import org.apache.spark.sql.types.{StructField, StructType}

/**
 * Spark 4's table creation: Spark calls `createTable` with Column[] (the
 * StructType form is deprecated there, and the only one in Spark 3.5).
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
      columns: Array[Column],
      partitions: Array[Transform],
      properties: util.Map[String, String]): Table =
    create(
      ident,
      StructType(columns.map(c => StructField(c.name, c.dataType, c.nullable))),
      partitions,
      properties)
}
