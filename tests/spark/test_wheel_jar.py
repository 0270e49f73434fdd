"""One install for PySpark users: the built wheel (`make python`) carries
both connector jars, and ``mosaicrs.spark.jar()`` is all that a session
needs to write with ``format("mosaicrs")``. Run under each Spark line's
interpreter (`make test-spark`), so the jar that it picks is checked on
Spark 4 and on Spark 3.5.

A fresh Spark application in a subprocess: the session fixture's already
holds a jar. The wheel is unpacked with pip (no dependencies: this
interpreter has pyspark and pyarrow) into a folder on its PYTHONPATH."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pyspark

from .conftest import REPO, SPARK_VERSION

WHEELS = REPO / "target" / "wheels" / "mosaicrs-python"

JOB = r"""
import json, os, sys
import pyarrow as pa, pyarrow.ipc
import mosaicrs, mosaicrs.spark
sys.path.insert(0, os.path.join(os.environ["MOSAICRS_REPO"], "tests", "spark"))
from quiet_session import quiet_session

jar = mosaicrs.spark.jar()
spark = quiet_session("local[2]", "mosaicrs-wheel-jar", [jar])
out = sys.argv[1]
spark.range(0, 100, numPartitions=2).selectExpr("id", "CAST(id AS DOUBLE) / 2 AS x") \
    .write.format("mosaicrs").save(out)
back = sorted(tuple(r) for r in spark.read.format("mosaicrs").load(out).collect())
spark.stop()
print(json.dumps({"jar": jar, "module": mosaicrs.__file__, "rows": back,
                  "dataset_rows": pa.table(mosaicrs.Dataset(out)).num_rows}))
"""


def test_jar_from_the_wheel_writes_with_spark(tmp_path):
    wheels = sorted(WHEELS.glob("mosaicrs-*.whl"))
    assert len(wheels) == 1, f"one wheel expected in {WHEELS} (make python): {wheels}"
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    "--no-deps", "--target", str(site), str(wheels[0])], check=True)
    env = {**os.environ, "PYTHONPATH": str(site), "PYSPARK_PYTHON": sys.executable,
           "MOSAICRS_REPO": str(REPO)}
    out = tmp_path / "ds"
    run = subprocess.run([sys.executable, "-c", JOB, str(out)], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])

    expected = "mosaicrs-spark-3.5_2.12.jar" if SPARK_VERSION < (4, 0) else "mosaicrs-spark-4_2.13.jar"
    assert Path(report["jar"]) == site / "mosaicrs" / "jars" / expected, (pyspark.__version__, report)
    assert report["module"].startswith(str(site))
    assert report["rows"] == [[i, i * 0.5] for i in range(100)]
    assert report["dataset_rows"] == 100
