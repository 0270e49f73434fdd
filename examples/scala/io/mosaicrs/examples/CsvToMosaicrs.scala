package io.mosaicrs.examples

import org.apache.spark.sql.SparkSession

/**
 * Reads a CSV file (header, inferred types) with Spark and writes it as a
 * mosaicrs dataset through the connector.
 *
 * {{{
 * spark-submit --master 'local[2]' --jars build/libs/mosaicrs-spark-4_2.13.jar \
 *   --class io.mosaicrs.examples.CsvToMosaicrs build/libs/mosaicrs-examples.jar \
 *   data.csv /tmp/data.mosaicrs [--mode overwrite] [--compression zstd] \
 *   [--shard-size 64m] [--batch-rows 8192] [--partitions 4]
 * }}}
 */
object CsvToMosaicrs {

  private val Usage =
    "usage: CsvToMosaicrs INPUT_CSV OUTPUT_DIR [--mode error|append|overwrite|ignore] " +
      "[--compression none|zstd|lz4] [--shard-size SIZE] [--batch-rows N] [--partitions N]"

  /** The command line, parsed. */
  final case class Args(
      input: String,
      output: String,
      mode: String = "error",
      options: Map[String, String] = Map.empty,
      partitions: Option[Int] = None)

  def parse(args: List[String]): Either[String, Args] = args match {
    case input :: output :: rest if !input.startsWith("--") && !output.startsWith("--") =>
      parseFlags(rest, Args(input, output))
    case _ => Left(Usage)
  }

  private def parseFlags(rest: List[String], acc: Args): Either[String, Args] = rest match {
    case Nil => Right(acc)
    case "--mode" :: v :: tail => parseFlags(tail, acc.copy(mode = v))
    case "--compression" :: v :: tail =>
      parseFlags(tail, acc.copy(options = acc.options + ("compression" -> v)))
    case "--shard-size" :: v :: tail =>
      parseFlags(tail, acc.copy(options = acc.options + ("shardSize" -> v)))
    case "--batch-rows" :: v :: tail =>
      parseFlags(tail, acc.copy(options = acc.options + ("batchRows" -> v)))
    case "--partitions" :: v :: tail =>
      scala.util.Try(v.toInt).toOption.filter(_ > 0) match {
        case Some(n) => parseFlags(tail, acc.copy(partitions = Some(n)))
        case None => Left(s"--partitions needs a positive number, got '$v'\n$Usage")
      }
    case flag :: _ => Left(s"unknown or incomplete argument '$flag'\n$Usage")
  }

  def main(argv: Array[String]): Unit = {
    val args = parse(argv.toList) match {
      case Right(a) => a
      case Left(message) =>
        System.err.println(message)
        sys.exit(2)
    }
    val spark = SparkSession.builder().appName("CsvToMosaicrs").getOrCreate()
    try {
      val csv = spark.read.option("header", "true").option("inferSchema", "true").csv(args.input)
      val df = args.partitions.fold(csv)(n => csv.repartition(n))
      df.write.format("mosaicrs").mode(args.mode).options(args.options).save(args.output)
      val columns = df.schema.fields.map(f => s"${f.name}:${f.dataType.simpleString}").mkString(", ")
      println(s"CsvToMosaicrs: wrote ${args.input} to ${args.output} (mode ${args.mode}); columns: $columns")
    } finally {
      spark.stop()
    }
  }
}
