"""Fork safety: a loader used in a forked child, a fresh loader in a child,
and DataLoader worker processes, each either works or fails with a message
that says what to do. Never a hang (the run has a timeout) or a crash."""

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

HERE = Path(__file__).resolve().parent


def test_fork_and_worker_processes(ids_dataset):
    proc = subprocess.run(
        [sys.executable, str(HERE / "fork_child.py"), str(ids_dataset)],
        capture_output=True, text=True, timeout=240,
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    lines = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
    assert lines["inherited"].startswith("RuntimeError")
    assert "spawn" in lines["inherited"] and "num_workers=0" in lines["inherited"]
    assert lines["inherited exit"] == "0"
    assert lines["fresh"] == "1000"
    assert lines["fresh exit"] == "0"
    assert lines["parent rest"] == "100"
    for method in ("fork", "spawn"):
        msg = lines[f"workers-{method}"]
        assert msg.startswith("RuntimeError") and "num_workers=0" in msg, msg
    assert out.strip().endswith("done")
