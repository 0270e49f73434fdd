package io.mosaicrs.spark.shim

/**
 * Nothing on Spark 4: its session catalog hands a `USING mosaicrs` table to
 * the source's `getTable`, and SQL reads and inserts take the DSv2 path.
 * (Spark 3.5's shim adds the V1 relation that its session catalog needs.)
 */
trait SessionCatalogShim
