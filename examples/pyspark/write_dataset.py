"""Write a PySpark DataFrame as a mosaicrs dataset.

    .venv/bin/python examples/pyspark/write_dataset.py OUTPUT_DIR [--rows N]
        [--mode error|append|overwrite|ignore] [--compression none|zstd|lz4]

The only set-up is the connector jar on `spark.jars` (or `--jars` with
spark-submit); it carries the native library. Build it with `make jar`.
"""

import argparse
import os

import pyspark
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The connector jar of this pyspark's line: Spark 3.5 (Scala 2.12) or Spark 4.x (Scala 2.13).
JAR = os.path.join(REPO, "build", "libs",
                   "mosaicrs-spark-3.5_2.12.jar" if pyspark.__version__.startswith("3.")
                   else "mosaicrs-spark-4_2.13.jar")


def main():
    parser = argparse.ArgumentParser(description="Write a DataFrame as a mosaicrs dataset.")
    parser.add_argument("output")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--mode", default="error")
    parser.add_argument("--compression", default="none")
    parser.add_argument("--jar", default=JAR)
    args = parser.parse_args()

    spark = (SparkSession.builder.appName("write_dataset")
             .config("spark.jars", args.jar)
             .getOrCreate())
    # Training-style data: an id, 16 float features and an int label.
    df = spark.range(args.rows).select(
        "id",
        *[F.rand(seed=i).cast("float").alias(f"f{i}") for i in range(16)],
        (F.col("id") % 10).cast("int").alias("label"),
    )
    (df.write.format("mosaicrs")
       .mode(args.mode)
       .option("compression", args.compression)
       .option("shardSize", "64m")
       .save(args.output))
    print(f"write_dataset: wrote {args.rows} rows to {args.output}")
    spark.stop()


if __name__ == "__main__":
    main()
