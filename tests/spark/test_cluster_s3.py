"""The cluster path end to end, with real parts only: a Spark standalone
cluster (a master and two workers, each with its own work and local
folders) writes a dataset to an S3 server (moto) through the connector,
one executor is killed with SIGKILL in the middle of the write, and the
committed dataset is then read back through the cluster and by the Rust
side from `s3://`."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import CONNECTOR_JAR, SPARK_4
from .standalone import StandaloneCluster
from conftest import cargo_target_dir, run_cli

HERE = Path(__file__).resolve().parent
# Three JVMs and a job with a lost executor take minutes: run once, on the
# Spark 4 line (the .venv suite of `make test-spark`).
pytestmark = pytest.mark.skipif(not SPARK_4, reason="the cluster test runs on the Spark 4 line")
ROWS = 60_000


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if not CONNECTOR_JAR.exists():
        pytest.fail(f"{CONNECTOR_JAR} is missing: run `make jar` first")
    c = StandaloneCluster(tmp_path_factory.mktemp("standalone"), workers=2)
    yield c
    c.stop()


def cli_storage_args(moto):
    return [a for k, v in moto.storage_options().items() for a in ("--storage", f"{k}={v}")]


def test_cluster_writes_to_s3_survives_a_killed_executor_and_reads_back(
        cluster, moto_server, mosaicrs_cli, tmp_path):
    bucket = moto_server.create_bucket("cluster")
    url = f"{bucket}/train"
    markers = tmp_path / "markers"
    markers.mkdir()
    job = subprocess.run(
        [sys.executable, str(HERE / "cluster_job.py"), cluster.url, str(CONNECTOR_JAR), url,
         json.dumps(moto_server.storage_options()), str(markers), str(ROWS)],
        env={**os.environ, "PYSPARK_PYTHON": sys.executable}, capture_output=True, text=True,
        timeout=600)
    assert job.returncode == 0, job.stdout[-3000:] + job.stderr[-6000:]
    result = json.loads(next(l for l in job.stdout.splitlines() if l.startswith("RESULT "))[7:])

    # The executor really died mid-write, and the job still wrote every row once.
    assert [m.name.split("-pid")[0] for m in markers.iterdir()] == ["killed-executor-p2-a0"]
    assert result["rows"] == ROWS
    assert result["distinct_ids"] == ROWS
    assert result["id_sum"] == ROWS * (ROWS - 1) // 2

    # The committed index lists exactly the shards in the bucket: the killed
    # attempt's uploaded shards were removed by the commit. The one version
    # record is the head's copy.
    index = json.loads(moto_server.get("cluster", "train/index.json"))
    objects = moto_server.list_keys("cluster", "train/")
    record = f"train/_versions/{index['version']:020d}.json"
    assert sorted([f"train/{s['path']}" for s in index["shards"]]
                  + ["train/index.json", record]) == objects
    assert json.loads(moto_server.get("cluster", record)) == index
    assert index["total_rows"] == ROWS
    assert len({(s["partition"]) for s in index["shards"]}) == 6
    # Shards went straight to the store: no worker folder holds one.
    assert cluster.files_under_workers(".arrow") == []

    # The trainer's side reads it from s3:// through its cache, checksums verified.
    cache = tmp_path / "cache"
    validate = run_cli(mosaicrs_cli, "validate", url, *cli_storage_args(moto_server),
                       "--cache-dir", str(cache))
    assert f"{ROWS} rows" in validate.stdout and validate.stdout.startswith("OK"), validate.stdout
    assert moto_server.SECRET_KEY not in validate.stdout + validate.stderr

    # The Rust training binary trains on it from s3:// through a cache that
    # holds well under half of the dataset (block-local shuffle streams it).
    largest = max(s["bytes"] for s in index["shards"])
    limit = 4 * largest + 4096  # two blocks of two shards: the one read, the one fetched ahead
    assert limit * 2 < index["total_bytes"], (limit, index["total_bytes"])
    train_cache = tmp_path / "train-cache"
    report = run_train(
        "--data", url, *cli_storage_args(moto_server), "--cache-dir", str(train_cache),
        "--cache-limit", str(limit), "--shuffle", "block-local:2", "--features", "x0,x1,x2,x3",
        "--label", "label", "--epochs", "2", "--batch-size", "256", "--device", "cpu")
    assert float(report["accuracy"]) > 0.9, report
    assert int(report["samples"]) >= 2 * int(ROWS * 0.8) - 2 * 256, report
    assert int(report["downloaded_bytes"]) >= index["total_bytes"], report
    assert 0 < int(report["cache_peak_bytes"]) <= limit, report


def run_train(*args) -> dict:
    """Builds (if needed) and runs the Rust training binary; its report line as a dict."""
    repo = HERE.parents[1]
    env = {**os.environ, "LIBTORCH_USE_PYTORCH": "1",
           "PATH": f"{repo / '.venv' / 'bin'}:{os.environ['PATH']}"}
    subprocess.run(["cargo", "build", "--quiet", "-p", "mosaicrs-train"], cwd=repo, env=env,
                   check=True)
    binary = cargo_target_dir() / "debug" / "mosaicrs-train"
    proc = subprocess.run([str(binary), *args], capture_output=True, text=True, env=env,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    line = next(l for l in proc.stdout.splitlines() if l.startswith("accuracy="))
    return dict(field.split("=", 1) for field in line.split())
