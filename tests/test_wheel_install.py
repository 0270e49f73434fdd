"""The built wheel (`make python`: target/wheels/mosaicrs-python) as a user
gets it: tagged abi3 and manylinux_2_28_x86_64, installed with pip into a
fresh venv of the oldest and of the newest CPython 3.10 to 3.13 that the
machine has (pyenv's, or MOSAICRS_TEST_PYTHONS: interpreter paths separated
by spaces) with only its declared dependencies. There the Arrow parts work
without torch, ``import mosaicrs.torch`` says that torch is needed, and the
wheel carries both connector jars (``mosaicrs.spark.jar``).

pip fetches pyarrow from the package index (or its cache) for each
interpreter."""

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
WHEELS = REPO / "target" / "wheels" / "mosaicrs-python"
SUPPORTED = [(3, 10), (3, 11), (3, 12), (3, 13)]
PIP = ["-m", "pip", "--disable-pip-version-check", "--no-input"]


def built_wheel() -> Path:
    wheels = sorted(WHEELS.glob("mosaicrs-*.whl"))
    if len(wheels) != 1:
        pytest.fail(f"expected one wheel in {WHEELS}, found {[w.name for w in wheels]}: "
                    "run `make python` first")
    return wheels[0]


def _version(python: Path):
    out = subprocess.run([str(python), "-c", "import sys; print(*sys.version_info[:2])"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        return None
    return tuple(int(p) for p in out.stdout.split())


def find_pythons():
    """{(major, minor): interpreter} for the supported versions found."""
    if os.environ.get("MOSAICRS_TEST_PYTHONS"):
        candidates = [Path(p) for p in os.environ["MOSAICRS_TEST_PYTHONS"].split()]
    else:
        root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
        try:
            root = subprocess.run(["pyenv", "root"], capture_output=True, text=True,
                                  check=True).stdout.strip() or root
        except (OSError, subprocess.CalledProcessError):
            pass
        versions = Path(root) / "versions"
        candidates = sorted(versions.glob("3.*/bin/python3")) if versions.is_dir() else []
    found = {}
    for python in candidates:
        version = _version(python)
        if version in SUPPORTED:
            found[version] = python  # sorted: the newest patch of a minor wins
    return found


PYTHONS = find_pythons()
CHOSEN = sorted(PYTHONS)
CHOSEN = [CHOSEN[0], CHOSEN[-1]] if len(CHOSEN) > 1 else CHOSEN


def test_wheel_is_tagged_abi3_manylinux_2_28():
    name = built_wheel().name
    assert re.fullmatch(r"mosaicrs-[0-9][^-]*-cp310-abi3-manylinux_2_28_x86_64\.whl", name), name


# What the venv runs: the Arrow parts, then the parts that need what is not installed.
SCRIPT = r"""
import json, os, sys
import pyarrow as pa
import mosaicrs, mosaicrs.spark

out = os.path.join(sys.argv[1], "ds")
result = mosaicrs.write(pa.table({"x": [0.5, 1.5, 2.5], "y": [1, 2, 3]}), out)
ds = mosaicrs.Dataset(out)
report = {
    "module": mosaicrs.__file__,
    "total_rows": result["total_rows"],
    "table": pa.table(ds).to_pydict(),
    "take": ds.take([2, 0]).to_pydict(),
    "jars": {v: os.path.basename(mosaicrs.spark.jar(v)) for v in ("3.5.9", "4.0.1", "4.3.0")},
    "jar_sizes": [os.path.getsize(mosaicrs.spark.jar(v)) for v in ("3.5.9", "4.0.1")],
}
for key, call in (("torch_error", lambda: __import__("mosaicrs.torch")),
                  ("jar_error", lambda: mosaicrs.spark.jar())):
    try:
        call()
        report[key] = None
    except ImportError as exc:
        report[key] = str(exc)
try:
    mosaicrs.spark.jar("3.4.1")
    report["old_spark_error"] = None
except ValueError as exc:
    report["old_spark_error"] = str(exc)
report["torch_loaded"] = "torch" in sys.modules
print(json.dumps(report))
"""


@pytest.mark.parametrize("version", CHOSEN or [None],
                         ids=[f"py{v[0]}.{v[1]}" for v in CHOSEN] or ["no-python"])
def test_wheel_installs_and_works_without_torch(version, tmp_path):
    if version is None:
        pytest.skip("no CPython 3.10 to 3.13 found (pyenv root's versions/, or set "
                    "MOSAICRS_TEST_PYTHONS)")
    wheel = built_wheel()
    venv = tmp_path / "venv"
    subprocess.run([str(PYTHONS[version]), "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    install = subprocess.run([str(python), *PIP, "install", "-q", str(wheel)],
                             capture_output=True, text=True, env=env, timeout=900)
    assert install.returncode == 0, install.stdout + install.stderr

    listed = subprocess.run([str(python), *PIP, "list", "--format=json"], check=True,
                            capture_output=True, text=True, env=env).stdout
    installed = {p["name"].lower() for p in json.loads(listed)} - {"pip", "setuptools", "wheel"}
    assert installed == {"mosaicrs", "pyarrow"}, installed

    run = subprocess.run([str(python), "-c", SCRIPT, str(tmp_path)], capture_output=True,
                         text=True, env=env, cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["module"].startswith(str(venv)), report["module"]
    assert report["total_rows"] == 3
    assert report["table"] == {"x": [0.5, 1.5, 2.5], "y": [1, 2, 3]}
    assert report["take"] == {"x": [2.5, 0.5], "y": [3, 1]}
    assert report["jars"] == {"3.5.9": "mosaicrs-spark-3.5_2.12.jar",
                              "4.0.1": "mosaicrs-spark-4_2.13.jar",
                              "4.3.0": "mosaicrs-spark-4_2.13.jar"}
    assert all(size > 100_000 for size in report["jar_sizes"]), report["jar_sizes"]
    assert report["torch_error"] and "needs PyTorch" in report["torch_error"], report
    assert report["jar_error"] and "pyspark is not installed" in report["jar_error"], report
    assert report["old_spark_error"] and "Spark 3.4.1" in report["old_spark_error"], report
    assert report["torch_loaded"] is False
