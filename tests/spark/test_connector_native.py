"""Loading the native library: the system property `mosaicrs.native.lib`
points the connector at a hand-built library instead of the bundled one."""

import os
import subprocess
import sys
import textwrap

from .conftest import OTHER_JAR, REPO, load_index

SCRIPT = textwrap.dedent("""
    import sys
    from pyspark.sql import SparkSession
    jar, out = sys.argv[1:3]
    spark = (SparkSession.builder.master("local[1]").config("spark.jars", jar)
             .config("spark.ui.enabled", "false").getOrCreate())
    try:
        spark.range(25).write.format("mosaicrs").save(out)
    finally:
        spark.stop()
""")


def run_with_library(connector_jar, out, library):
    env = {**os.environ,
           "PYSPARK_SUBMIT_ARGS":
               f"--driver-java-options -Dmosaicrs.native.lib={library} pyspark-shell"}
    return subprocess.run([sys.executable, "-c", SCRIPT, str(connector_jar), str(out)],
                          env=env, capture_output=True, text=True, timeout=180)


def test_property_points_at_a_hand_built_library(connector_jar, tmp_path):
    # The unstripped library that `gradle jar` builds (cargo zigbuild) before
    # it packs a stripped copy.
    library = REPO / "target" / "x86_64-unknown-linux-gnu" / "release" / "libmosaicrs_jni.so"
    assert library.exists(), "gradle jar builds it"
    job = run_with_library(connector_jar, tmp_path / "ds", library)
    assert job.returncode == 0, job.stderr
    assert load_index(tmp_path / "ds")["total_rows"] == 25


def test_property_naming_no_file_is_a_clear_error(connector_jar, tmp_path):
    missing = tmp_path / "no-such-lib.so"
    job = run_with_library(connector_jar, tmp_path / "ds", missing)
    assert job.returncode != 0
    assert "MosaicrsInternalException" in job.stderr
    assert f"-Dmosaicrs.native.lib names {missing}, which is not a file" in job.stderr
    assert not (tmp_path / "ds").exists()


def test_the_other_lines_jar_fails_naming_both_versions(tmp_path):
    """The jar of the other Spark line fails on first use, on the driver, with
    a message naming the versions and the right jar: no NoSuchMethodError."""
    import pyspark

    assert OTHER_JAR.exists(), "make jar builds both jars"
    job = subprocess.run([sys.executable, "-c", SCRIPT, str(OTHER_JAR), str(tmp_path / "ds")],
                         capture_output=True, text=True, timeout=180)
    assert job.returncode != 0
    assert "MosaicrsVersionException" in job.stderr, job.stderr[-3000:]
    built_for = "Spark 3.5 with Scala 2.12" if "3.5" in OTHER_JAR.name else "Spark 4 with Scala 2.13"
    assert f"is built for {built_for}, but this is Spark {pyspark.__version__}" in job.stderr
    assert "NoSuchMethodError" not in job.stderr
    assert not (tmp_path / "ds").exists()
