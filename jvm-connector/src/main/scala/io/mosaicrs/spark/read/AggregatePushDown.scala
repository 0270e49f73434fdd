package io.mosaicrs.spark.read

import org.apache.spark.sql.connector.expressions.{Expression, NamedReference}
import org.apache.spark.sql.connector.expressions.aggregate.{Aggregation, Count, CountStar, Max, Min, Sum}
import org.apache.spark.sql.connector.read.{Scan, ScanBuilder, SupportsPushDownAggregates, SupportsPushDownRequiredColumns}
import org.apache.spark.sql.types.{DataType, StructType}

/**
 * A [[MosaicrsScanBuilder]] that also takes aggregates without grouping from
 * Spark. Spark pushes an aggregate only when no filter is left above the scan
 * (the connector pushes none), so the aggregates are the dataset's.
 *
 *  - Only `COUNT(*)`s: answered from the index's row count by a local scan, so
 *    `df.count()` runs no job and opens no shard.
 *  - `COUNT(*)`, `COUNT(col)`, `SUM(col)` of byte to bigint, float and
 *    double columns, and `MIN(col)` and `MAX(col)` of those and of boolean,
 *    date and timestamp columns, without `DISTINCT`: pushed partially, to a
 *    [[MosaicrsAggregateScan]] whose tasks each return one row of partial
 *    aggregates, which Spark's final aggregate combines (an `AVG` reaches it
 *    as a `SUM` and a `COUNT`). `COUNT(col)` takes each batch's null count
 *    and reads no value. The index keeps no per-column null counts or
 *    bounds and every stored column is nullable, so `COUNT(col)`, `MIN` and
 *    `MAX` cannot be answered from the index alone as `COUNT(*)` is.
 *
 * Any other aggregate (a decimal or string `MIN`/`MAX`, a decimal sum, an
 * expression, a grouping) stays with Spark, over the columnar scan.
 *
 * (Scala, not Java: Spark 4's `Aggregation` is a Java record, which the
 * connector's Java 11 bytecode cannot read.)
 */
final class AggregatePushDown(builder: MosaicrsScanBuilder)
    extends ScanBuilder
    with SupportsPushDownRequiredColumns
    with SupportsPushDownAggregates {

  /** How many `COUNT(*)`s Spark pushed; 0 while none is. */
  private var pushedCounts = 0
  /** The partially pushed aggregates: kinds and columns (see [[MosaicrsAggregateScan]]). */
  private var pushedPartial: Option[(Array[Int], Array[String])] = None

  override def pruneColumns(requiredSchema: StructType): Unit = builder.pruneColumns(requiredSchema)

  override def supportCompletePushDown(aggregation: Aggregation): Boolean = countsOnly(aggregation)

  override def pushAggregation(aggregation: Aggregation): Boolean = {
    if (countsOnly(aggregation)) {
      pushedCounts = aggregation.aggregateExpressions().length
    } else {
      pushedPartial = partial(aggregation)
    }
    pushedCounts > 0 || pushedPartial.isDefined
  }

  override def build(): Scan =
    if (pushedCounts > 0) builder.countScan(pushedCounts)
    else pushedPartial.fold(builder.build()) { case (kinds, columns) => builder.aggregateScan(kinds, columns) }

  private def countsOnly(aggregation: Aggregation): Boolean =
    aggregation.groupByExpressions().isEmpty &&
      aggregation.aggregateExpressions().nonEmpty &&
      aggregation.aggregateExpressions().forall(_.isInstanceOf[CountStar])

  private def partial(aggregation: Aggregation): Option[(Array[Int], Array[String])] = {
    if (!aggregation.groupByExpressions().isEmpty || aggregation.aggregateExpressions().isEmpty) {
      return None
    }
    val specs = aggregation.aggregateExpressions().toSeq.map {
      case _: CountStar => Some((MosaicrsAggregateScan.COUNT_STAR, null: String))
      case c: Count if !c.isDistinct => column(c.column, _ => true).map((MosaicrsAggregateScan.COUNT, _))
      case s: Sum if !s.isDistinct =>
        column(s.column, MosaicrsAggregateScan.summable).map((MosaicrsAggregateScan.SUM, _))
      case m: Min => column(m.column, MosaicrsAggregateScan.ordered).map((MosaicrsAggregateScan.MIN, _))
      case m: Max => column(m.column, MosaicrsAggregateScan.ordered).map((MosaicrsAggregateScan.MAX, _))
      case _ => None
    }
    if (specs.forall(_.isDefined)) Some((specs.map(_.get._1).toArray, specs.map(_.get._2).toArray))
    else None
  }

  /** The table column `expression` names, when it is one and of a type that `fits`. */
  private def column(expression: Expression, fits: DataType => Boolean): Option[String] = expression match {
    case ref: NamedReference if ref.fieldNames().length == 1 =>
      val schema = builder.tableSchema()
      schema.fields
        .find(_.name == ref.fieldNames()(0))
        .filter(f => fits(f.dataType))
        .map(_.name)
    case _ => None
  }
}
