package io.mosaicrs.spark.read

import org.apache.spark.sql.connector.expressions.aggregate.{Aggregation, CountStar}
import org.apache.spark.sql.connector.read.{Scan, ScanBuilder, SupportsPushDownAggregates, SupportsPushDownRequiredColumns}
import org.apache.spark.sql.types.StructType

/**
 * A [[MosaicrsScanBuilder]] that also takes `COUNT(*)` from Spark: an
 * aggregation of only `COUNT(*)`s without grouping is answered from the
 * index's row count by a local scan, so `df.count()` runs no job and opens no
 * shard. Spark pushes an aggregate only when no filter is left above the scan
 * (the connector pushes none), so the count is the dataset's. Any other
 * aggregate stays with Spark, over the columnar scan.
 *
 * (Scala, not Java: Spark 4's `Aggregation` is a Java record, which the
 * connector's Java 11 bytecode cannot read.)
 */
final class CountPushDown(builder: MosaicrsScanBuilder)
    extends ScanBuilder
    with SupportsPushDownRequiredColumns
    with SupportsPushDownAggregates {

  /** How many `COUNT(*)`s Spark pushed; 0 while none is. */
  private var pushedCounts = 0

  override def pruneColumns(requiredSchema: StructType): Unit = builder.pruneColumns(requiredSchema)

  override def supportCompletePushDown(aggregation: Aggregation): Boolean = countsOnly(aggregation)

  override def pushAggregation(aggregation: Aggregation): Boolean = {
    if (countsOnly(aggregation)) pushedCounts = aggregation.aggregateExpressions().length
    pushedCounts > 0
  }

  override def build(): Scan = if (pushedCounts > 0) builder.countScan(pushedCounts) else builder.build()

  private def countsOnly(aggregation: Aggregation): Boolean =
    aggregation.groupByExpressions().isEmpty &&
      aggregation.aggregateExpressions().nonEmpty &&
      aggregation.aggregateExpressions().forall(_.isInstanceOf[CountStar])
}
