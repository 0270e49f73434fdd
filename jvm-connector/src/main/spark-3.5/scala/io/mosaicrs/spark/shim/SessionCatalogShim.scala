package io.mosaicrs.spark.shim

import scala.collection.JavaConverters._

import org.apache.spark.TaskContext
import org.apache.spark.rdd.RDD
import org.apache.spark.sql.{DataFrame, Row, SaveMode, SQLContext}
import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.catalyst.expressions.{BoundReference, UnsafeProjection}
import org.apache.spark.sql.connector.catalog.{SupportsRead, Table, TableProvider}
import org.apache.spark.sql.connector.expressions.Transform
import org.apache.spark.sql.connector.read.{InputPartition, PartitionReaderFactory, SupportsPushDownRequiredColumns}
import org.apache.spark.sql.sources.{BaseRelation, DataSourceRegister, InsertableRelation, PrunedScan, RelationProvider, SchemaRelationProvider}
import org.apache.spark.sql.types.StructType
import org.apache.spark.sql.util.CaseInsensitiveStringMap

/**
 * SQL tables (`CREATE TABLE t USING mosaicrs LOCATION '...'`) on Spark 3.5.
 *
 * Spark 3.5's session catalog keeps such a table as a V1 table:
 * `V2SessionCatalog.loadTable` returns a `V1Table` whatever the provider
 * (Spark 4 asks the provider's `getTable`), and the analyzer's
 * `FindDataSourceTable` resolves it with `DataSource.resolveRelation`, which
 * accepts only a `RelationProvider` or `SchemaRelationProvider`. So here the
 * source is both, and its relation only adapts the connector's own paths:
 *
 *  - reads run the table's DSv2 scan (the same `getTable`, scan builder,
 *    partitions and readers as `spark.read.format("mosaicrs")`);
 *  - `INSERT INTO` / `INSERT OVERWRITE` run `df.write.format("mosaicrs")`
 *    in mode append / overwrite with the table's options: the same job and
 *    the same atomic, exactly-once commit as any save.
 *
 * Spark 4's shim is an empty trait: there the session catalog takes the DSv2
 * path itself.
 */
trait SessionCatalogShim extends RelationProvider with SchemaRelationProvider {
  this: TableProvider with DataSourceRegister =>

  /** A table created without columns: the dataset's schema, or an error naming the path. */
  override def createRelation(sqlContext: SQLContext, parameters: Map[String, String]): BaseRelation = {
    val options = new CaseInsensitiveStringMap(Collections.toJava(parameters))
    relation(sqlContext, inferSchema(options), parameters)
  }

  /** A table created with columns: the scan checks them against the dataset. */
  override def createRelation(
      sqlContext: SQLContext,
      parameters: Map[String, String],
      schema: StructType): BaseRelation =
    relation(sqlContext, schema, parameters)

  private def relation(sqlContext: SQLContext, schema: StructType, parameters: Map[String, String]) =
    new SessionCatalogShim.TableRelation(
      sqlContext,
      schema,
      getTable(schema, Array.empty[Transform], Collections.toJava(parameters)),
      parameters,
      shortName())
}

object SessionCatalogShim {

  /**
   * A V1 view of a mosaicrs table. `buildScan` returns internal rows
   * (`needConversion` is false), in the order of the requested columns.
   */
  private final class TableRelation(
      override val sqlContext: SQLContext,
      override val schema: StructType,
      table: Table,
      parameters: Map[String, String],
      format: String)
      extends BaseRelation
      with PrunedScan
      with InsertableRelation {

    override def needConversion: Boolean = false

    override def toString: String = table.name()

    override def buildScan(requiredColumns: Array[String]): RDD[Row] = {
      // The read options of a SQL query are none, as on Spark 4; the table's
      // own options are the table's (getTable has them).
      val builder = table.asInstanceOf[SupportsRead].newScanBuilder(CaseInsensitiveStringMap.empty())
      val required = StructType(requiredColumns.map(schema(_)))
      builder match {
        case pruning: SupportsPushDownRequiredColumns => pruning.pruneColumns(required)
        case _ =>
      }
      val scan = builder.build()
      val batch = scan.toBatch
      val read = scan.readSchema()
      // The scan returns its columns in the table's order; Spark wants the requested order.
      val order = required.fields.map { f =>
        val i = read.fieldIndex(f.name)
        BoundReference(i, read(i).dataType, read(i).nullable)
      }
      val partitions: Seq[InputPartition] = batch.planInputPartitions().toSeq
      val factory = batch.createReaderFactory()
      sqlContext.sparkContext
        .parallelize(partitions, math.max(1, partitions.size))
        .mapPartitions(_.flatMap(readPartition(factory, order, _)))
        .asInstanceOf[RDD[Row]]
    }

    override def insert(data: DataFrame, overwrite: Boolean): Unit =
      data.write
        .format(format)
        .options(parameters)
        .mode(if (overwrite) SaveMode.Overwrite else SaveMode.Append)
        .save()
  }

  /** The rows of one input partition, read as columnar batches, projected to `order`. */
  private def readPartition(
      factory: PartitionReaderFactory,
      order: Seq[BoundReference],
      partition: InputPartition): Iterator[InternalRow] = {
    val reader = factory.createColumnarReader(partition)
    Option(TaskContext.get()).foreach(_.addTaskCompletionListener[Unit](_ => reader.close()))
    val project = UnsafeProjection.create(order)
    // A batch stays valid until the next `reader.next()`, which runs only
    // once its rows have all been consumed.
    new Iterator[Iterator[InternalRow]] {
      private var fetched = false
      private var more = false

      override def hasNext: Boolean = {
        if (!fetched) {
          more = reader.next()
          fetched = true
          if (!more) reader.close()
        }
        more
      }

      override def next(): Iterator[InternalRow] = {
        if (!hasNext) throw new NoSuchElementException("no more batches")
        fetched = false
        reader.get().rowIterator().asScala.map(project)
      }
    }.flatMap(identity)
  }
}
