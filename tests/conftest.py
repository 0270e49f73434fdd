"""Fixtures shared by the Python tests: the built `mosaicrs` CLI."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from moto_server import MotoServer

REPO = Path(__file__).resolve().parent.parent


def cargo_target_dir() -> Path:
    meta = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=REPO, check=True, capture_output=True, text=True,
    )
    return Path(json.loads(meta.stdout)["target_directory"])


@pytest.fixture(scope="session")
def mosaicrs_cli() -> Path:
    """Builds (if needed) and returns the path of the `mosaicrs` binary."""
    subprocess.run(
        ["cargo", "build", "--quiet", "-p", "mosaicrs-cli", "--bin", "mosaicrs"],
        cwd=REPO, check=True,
    )
    binary = cargo_target_dir() / "debug" / "mosaicrs"
    assert binary.exists(), binary
    return binary


def run_cli(binary: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "NO_COLOR": "1"})
    if check and proc.returncode != 0:
        raise AssertionError(f"mosaicrs {' '.join(map(str, args))} failed "
                             f"({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def moto_server():
    try:
        server = MotoServer()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield server
    server.stop()


# The slowest files start first: on two pytest-xdist workers (`make
# test-python`, each file on one worker) a long file collected last would run
# alone at the end while the other worker idles.
SLOW_FILES_FIRST = ("test_bench_smoke.py", "test_bench_tokens_smoke.py", "test_trainers.py")


def pytest_collection_modifyitems(items) -> None:
    def rank(item) -> int:
        name = item.path.name
        return SLOW_FILES_FIRST.index(name) if name in SLOW_FILES_FIRST else len(SLOW_FILES_FIRST)

    items.sort(key=rank)  # stable: every other test keeps its place
