"""Smoke run of the benchmark suite (bench/run.py --smoke) on a few thousand rows.

Keeps the suite from rotting: it generates both shapes in Spark, runs every contender
through the same code as `make bench`, and checks the JSON. Contenders that need a venv
of their own (MosaicML Streaming, Hugging Face datasets) run only when `make bench` or
`make bench-venvs` has installed them; otherwise the run reports them as not installed,
and this test prints that. Parquet, the torch DataLoader, numpy and memcpy need nothing
extra and must always give positive rates, as must the mosaicrs writer and loader once
their artifacts are built.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# bench/run.py imports its siblings (procmem, report, venvs, shapes) by name.
sys.path.insert(0, str(REPO / "bench"))
_spec = importlib.util.spec_from_file_location("bench_run", REPO / "bench" / "run.py")
bench_run = importlib.util.module_from_spec(_spec)
sys.modules["bench_run"] = bench_run  # its dataclasses look their module up there
_spec.loader.exec_module(bench_run)

ALWAYS_WRITE = {"parquet", "parquet-none"}
ALWAYS_READ = {"numpy-gather", "memcpy", "torch-parquet", "torch-parquet-batched"}
# Reasons the suite gives for a contender that could not run; anything else is a failure.
ACCEPTED = ("not installed:", "not built:")


def _check_entry(entry: dict, rate_key: str, must_run: bool) -> str | None:
    """None when the entry is fine; otherwise what is wrong with it."""
    if entry.get("ok"):
        if not entry[rate_key] > 0:
            return f"{entry['name']}: {rate_key} is {entry[rate_key]}"
        return None
    reason = entry.get("error", "")
    if must_run or not reason.startswith(ACCEPTED):
        return f"{entry['name']} did not run: {reason}"
    print(f"SKIPPED in the smoke run: {entry['name']}: {reason}")
    return None


def test_smoke_run_reports_every_contender(tmp_path):
    out = tmp_path / "results"
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "run.py"),
            "--smoke",
            "--no-install",
            f"--out={out}",
            f"--work={tmp_path / 'data'}",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    doc = json.loads((out / "results.json").read_text())
    assert doc["meta"]["smoke"] is True
    assert set(doc["shapes"]) == {"tabular", "embedding"}

    jar_built = doc["artifacts"]["connector_jar"]["built"]
    loader_built = doc["artifacts"]["loader_bench"]["built"]
    wheel_installed = importlib.util.find_spec("mosaicrs") is not None
    problems = []
    for shape, block in doc["shapes"].items():
        writes = {w["name"]: w for w in block["write"]}
        assert set(writes) == {w.name for w in bench_run.WRITERS}, shape
        for name, entry in writes.items():
            must = name in ALWAYS_WRITE or (name.startswith("mosaicrs") and jar_built)
            problems.append(_check_entry(entry, "rows_per_s", must))
            if entry.get("ok"):
                assert entry["rows"] == block["rows"]
                assert entry["bytes_on_disk"] > 0
                assert entry["memory"]["peak_total_rss_bytes"] > 0
        reads = block["read"]
        expected = {(r.name, b) for r in bench_run.READERS for b in bench_run.BATCH_SIZES}
        assert {(r["name"], r["batch_size"]) for r in reads} == expected, shape
        for entry in reads:
            name = entry["name"]
            must = name in ALWAYS_READ or (name == "mosaicrs-loader" and jar_built and loader_built)
            must = must or (name == "mosaicrs-python" and jar_built and wheel_installed)
            problems.append(_check_entry(entry, "batches_per_s", must))
            if entry.get("ok"):
                assert entry["time_to_first_batch_s"] > 0
                assert entry["memory"]["peak_total_rss_bytes"] > 0
            if name == "mosaicrs-python" and entry.get("ok"):
                # Its Rust side is the loader bench binary's --epochs-from-stdin mode.
                same = entry["same_process"]
                if loader_built:
                    assert "error" not in same, same
                    assert same["rust_samples_per_s"] > 0 and same["python_samples_per_s"] > 0
                    assert same["python_over_rust"] > 0
                else:
                    assert same["error"].startswith("not built:"), same
    problems = [p for p in problems if p]
    assert not problems, "\n".join(problems)

    table = (out / "comparison.md").read_text()
    assert "SMOKE RUN" in table
    for shape in ("tabular", "embedding"):
        assert f"#### Write, {shape}" in table and f"#### Read, {shape}" in table
