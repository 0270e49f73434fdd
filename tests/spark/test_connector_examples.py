"""The examples run as users run them: the Scala job through spark-submit
with only --jars, and the PySpark script."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_cli

from .conftest import EXAMPLES_JAR, REPO, SPARK_4, load_index, stray_files


def spark_submit() -> str:
    import pyspark

    return os.path.join(os.path.dirname(pyspark.__file__), "bin", "spark-submit")


@pytest.fixture()
def people_csv(tmp_path) -> Path:
    path = tmp_path / "people.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "name", "height", "member", "joined"])
        for i in range(300):
            w.writerow([i, f"person {i}", "" if i % 9 == 0 else 150 + i % 50 * 0.5,
                        "true" if i % 2 else "false", f"2023-{1 + i % 12:02d}-{1 + i % 27:02d}"])
    return path


@pytest.mark.skipif(not SPARK_4, reason="the examples jar is built for Spark 4 / Scala 2.13")
def test_scala_csv_example_through_spark_submit(connector_jar, mosaicrs_cli, people_csv,
                                                tmp_path):
    if not EXAMPLES_JAR.exists():
        pytest.fail(f"{EXAMPLES_JAR} is missing: run `make jar` first")
    out = tmp_path / "people"
    cmd = [spark_submit(), "--master", "local[2]", "--jars", str(connector_jar),
           "--conf", "spark.ui.enabled=false",
           "--class", "io.mosaicrs.examples.CsvToMosaicrs", str(EXAMPLES_JAR),
           str(people_csv), str(out), "--compression", "zstd", "--partitions", "3"]
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    job = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert job.returncode == 0, job.stdout + job.stderr
    assert "CsvToMosaicrs: wrote" in job.stdout

    info = json.loads(run_cli(mosaicrs_cli, "inspect", out, "--json").stdout)
    assert info["rows"] == 300
    run_cli(mosaicrs_cli, "validate", out)
    index = load_index(out)
    types = {f["name"]: f["type"] for f in index["fields"]}
    assert types["id"] == "Int32" and types["height"] == "Float64"
    assert types["member"] == "Boolean" and types["joined"] == "Date32"
    assert {s["compression"] for s in index["shards"]} == {"zstd"}
    assert stray_files(out) == []
    head = run_cli(mosaicrs_cli, "head", out, "-n", "3").stdout
    assert "person" in head

    # Running it again without --mode is the default ErrorIfExists: refused.
    again = subprocess.run(cmd[:-4], capture_output=True, text=True, timeout=300, env=env)
    assert again.returncode != 0
    assert "already exists" in again.stderr


def test_pyspark_example(connector_jar, mosaicrs_cli, tmp_path):
    out = tmp_path / "train"
    job = subprocess.run(
        [sys.executable, str(REPO / "examples" / "pyspark" / "write_dataset.py"), str(out),
         "--rows", "5000", "--jar", str(connector_jar)],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYSPARK_SUBMIT_ARGS": "--master local[2] pyspark-shell"})
    assert job.returncode == 0, job.stdout + job.stderr
    info = json.loads(run_cli(mosaicrs_cli, "inspect", out, "--json").stdout)
    assert info["rows"] == 5000
    assert [f["name"] for f in load_index(out)["fields"]] == \
        ["id"] + [f"f{i}" for i in range(16)] + ["label"]
