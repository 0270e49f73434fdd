"""mosaicrs benchmark suite: generate data in Spark, run every contender, write results.

    .venv/bin/python bench/run.py                 # full run (what `make bench` does)
    .venv/bin/python bench/run.py --smoke --out DIR --no-install   # tiny data, no downloads

Steps, per shape (bench/shapes.py): the write side (bench/write_spark.py) in one process
per venv, then the read side, one process per contender and batch size (bench/read_py.py,
or the Rust loader bench binary), with the process tree's RSS sampled from here. Results
go to OUT/results.json, plots to OUT/*.png (bench/plot.py, in the plot venv), tables to
OUT/comparison.md (bench/report.py), and with --update-doc into BENCHMARKS.md.

A contender that cannot run (its venv did not install, a mosaicrs artifact is not built,
its input was not written, it crashed) gets an entry with `ok: false` and the reason.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import procmem  # noqa: E402
import report  # noqa: E402
import rust_epochs  # noqa: E402
import venvs  # noqa: E402
from shapes import SHAPES, Shape  # noqa: E402

REPO = venvs.REPO_ROOT
DEFAULT_JAR = REPO / "build" / "libs" / "mosaicrs-spark-4_2.13.jar"

BATCH_SIZES = (256, 4096)
SHARED = "shared"


@dataclass(frozen=True)
class Writer:
    """A write contender, the venv it runs in, and whether it needs the connector jar."""

    name: str
    venv: str
    label: str
    needs_jar: bool = False


@dataclass(frozen=True)
class Reader:
    """A read contender, its venv (or the Rust binary), and which write output it reads."""

    name: str
    venv: str
    reads: str
    label: str


WRITERS = [
    Writer("mosaicrs", SHARED, 'format("mosaicrs"), uncompressed', needs_jar=True),
    Writer("mosaicrs-zstd", SHARED, 'format("mosaicrs"), zstd', needs_jar=True),
    Writer(
        "mosaicrs-packed",
        SHARED,
        'format("mosaicrs"), features packed row-major (pack.features / fixedLength.emb)',
        needs_jar=True,
    ),
    Writer("parquet", SHARED, "Spark Parquet (snappy, the default)"),
    Writer("parquet-none", SHARED, "Spark Parquet, uncompressed"),
    Writer("mds", "streaming", "MosaicML dataframe_to_mds, uncompressed"),
    Writer("hf-datasets", "hf", "HF datasets Dataset.from_spark"),
]

READERS = [
    Reader("mosaicrs-loader", "rust", "mosaicrs", "mosaicrs loader (Rust, mapped shards)"),
    Reader(
        "mosaicrs-loader-packed",
        "rust",
        "mosaicrs-packed",
        "mosaicrs loader (Rust), packed row-major features",
    ),
    Reader("mosaicrs-loader-zstd", "rust", "mosaicrs-zstd", "mosaicrs loader (Rust), zstd shards"),
    Reader("mosaicrs-python", SHARED, "mosaicrs", "mosaicrs.torch.Loader (Python package)"),
    Reader("mds-w0", "streaming", "mds", "MosaicML StreamingDataset, DataLoader 0 workers"),
    Reader("mds-w2", "streaming", "mds", "MosaicML StreamingDataset, DataLoader 2 workers"),
    Reader("torch-parquet", SHARED, "parquet", "torch DataLoader over pyarrow Parquet"),
    Reader(
        "torch-parquet-batched",
        SHARED,
        "parquet",
        "torch DataLoader over pyarrow Parquet, batch sampler",
    ),
    Reader("numpy-gather", SHARED, "parquet", "in-memory numpy gather"),
    Reader("memcpy", SHARED, "parquet", "memcpy of the same bytes"),
]


STARTED = time.monotonic()


def log(msg: str) -> None:
    print(f"bench: [{time.monotonic() - STARTED:6.1f} s] {msg}", file=sys.stderr, flush=True)


def tail(text: str, lines: int = 8) -> str:
    return "\n".join(line for line in text.strip().splitlines()[-lines:])


def machine_info() -> dict:
    """What the figures were taken on."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = 0
    try:
        mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 2**20, 1),
        "gpu": "none",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load_average_start": os.getloadavg(),
    }


def git_rev() -> str:
    proc = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return proc.stdout.strip() or "unknown"


def interpreters(install: bool, wanted: set[str]) -> dict[str, venvs.VenvStatus]:
    """The interpreter of each venv the chosen contenders need."""
    found = {SHARED: venvs.VenvStatus(SHARED, venvs.SHARED_VENV_PYTHON)}
    for name in sorted(wanted - {SHARED, "rust"}):
        found[name] = venvs.ensure(name, install=install, log=log)
        if found[name].python is None:
            log(f"SKIPPING contenders in venv '{name}': {found[name].error}")
    return found


def shown(path: Path) -> str:
    """`path` relative to the repository when it is inside it."""
    path = path.resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def failed(name: str, reason: str, **extra) -> dict:
    return {"name": name, "ok": False, "error": reason, **extra}


def run_json(cmd: list[str], timeout: float, env: dict | None = None) -> tuple[dict | None, str]:
    """Run `cmd`, sampling its tree's RSS; the JSON on its last stdout line, or why none."""
    # One intra-op thread: the Python contenders gather on the main thread (or in
    # DataLoader workers, which torch already limits to one), and OpenMP spinning on a
    # busy 2-core machine slows small tensor ops by orders of magnitude.
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO
    )
    with procmem.PeakSampler(root=proc.pid) as sampler:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            return None, f"timed out after {timeout:.0f} s: {tail(err, 4)}"
    if proc.returncode != 0:
        said = [line for line in err.splitlines() if "Error" in line]
        return None, f"exit {proc.returncode}: {said[-1] if said else tail(err)}"
    doc = parse_json(out)
    if doc is None:
        return None, f"printed no JSON: {tail(out + err)}"
    doc["memory"] = sampler.result()
    return doc, err


def parse_json(out: str) -> dict | None:
    """The JSON object a contender printed: all of stdout, or else its last line."""
    for text in (out, *reversed(out.strip().splitlines()[-1:])):
        try:
            doc = json.loads(text)
        except ValueError:
            continue
        if isinstance(doc, dict):
            return doc
    return None


def from_loader_report(doc: dict) -> dict:
    """Figures of the loader from mosaicrs-loader-bench's report.

    The binary also times in-memory gathers and memcpy in the same process after the
    loader; those are kept under `in_process`. Its max_rss_bytes (VmHWM while the loader
    ran) is the loader's peak; the tree's peak sampled from here covers the whole
    process, in-memory copies included, and is kept as `process_memory`.
    """
    entries = doc.get("contenders") or []
    loader = next((c for c in entries if c.get("id") == "mosaicrs_loader"), None)
    if loader is None:
        raise ValueError(f"no mosaicrs_loader entry among {[c.get('id') for c in entries]}")
    memory = dict(doc["memory"])
    if loader.get("max_rss_bytes"):
        memory["peak_total_rss_bytes"] = loader["max_rss_bytes"]
    return {
        "batches_per_s": loader["batches_per_s"],
        "samples_per_s": loader["samples_per_s"],
        "time_to_first_batch_s": loader["time_to_first_batch_s"],
        "batches": loader.get("batches"),
        "elapsed_s": loader.get("seconds"),
        "memory": memory,
        "process_memory": doc["memory"],
        "in_process": entries,
        "in_process_ratios": doc.get("ratios"),
        "workers": doc.get("workers"),
        "device": doc.get("device"),
    }


def _write_process(venv: str, writers: list[Writer], plan, py: dict, args) -> dict:
    """One write_spark.py process: {shape: {writer: entry}} (entries say why on failure)."""
    names = ",".join(w.name for w in writers)
    log(f"write {names} in venv {venv}: " + ", ".join(f"{s.name} {n:,} rows" for s, n in plan))
    with tempfile.NamedTemporaryFile(suffix=".json") as tmp:
        cmd = [
            str(py[venv].python),
            str(REPO / "bench" / "write_spark.py"),
            *(f"--shape={shape.name}={rows}" for shape, rows in plan),
            f"--work={args.work}",
            f"--contenders={names}",
            f"--reps={args.reps}",
            f"--json={tmp.name}",
        ]
        if any(w.needs_jar for w in writers):
            cmd.append(f"--jar={args.jar}")
        if args.smoke:
            cmd.append("--no-warmup")
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, cwd=REPO)
        for line in proc.stderr.splitlines():
            if line.startswith("bench:"):
                print(line, file=sys.stderr, flush=True)
        try:
            doc = json.loads(Path(tmp.name).read_text())
        except (OSError, ValueError):
            reason = f"write process exit {proc.returncode}: {tail(proc.stderr)}"
            return {s.name: {w.name: failed(w.name, reason) for w in writers} for s, _ in plan}
    found = {}
    for shape_name, block in doc["shapes"].items():
        found[shape_name] = {}
        for entry in block["contenders"]:
            entry["cache_s"] = block["cache_s"]
            found[shape_name][entry["name"]] = entry
    return found


def run_writes(plan: list[tuple[Shape, int]], py: dict, args) -> dict[str, list[dict]]:
    """All write contenders of the shapes in `plan`, one process per venv."""
    results: dict[str, dict[str, dict]] = {shape.name: {} for shape, _ in plan}
    groups: dict[str, list[Writer]] = {}
    for w in WRITERS:
        if w.name not in args.contenders:
            continue
        reason = None
        if py[w.venv].python is None:
            reason = f"not installed: {py[w.venv].error}"
        elif w.needs_jar and not args.jar.is_file():
            reason = f"not built: {shown(args.jar)} is missing (make jar)"
        if reason:
            for shape, _ in plan:
                results[shape.name][w.name] = failed(w.name, reason)
        else:
            groups.setdefault(w.venv, []).append(w)
    for venv, writers in groups.items():
        for shape_name, entries in _write_process(venv, writers, plan, py, args).items():
            results[shape_name].update(entries)
    ordered: dict[str, list[dict]] = {}
    for shape_name, entries in results.items():
        ordered[shape_name] = []
        for w in WRITERS:
            if w.name in entries:
                entries[w.name].update(label=w.label, venv=w.venv)
                ordered[shape_name].append(entries[w.name])
    return ordered


def loader_bench_cmd(binary: Path, shape: Shape, data: str, batch: int, args) -> list[str]:
    """Command line of the Rust loader bench binary (crates/mosaicrs-bench, mosaicrs-loader-bench)."""
    return [
        str(binary),
        "--data",
        data,
        "--batch-size",
        str(batch),
        "--json",
    ]


def torch_lib_env() -> dict:
    """LD_LIBRARY_PATH with the shared venv's libtorch, which the tch binaries link."""
    libs = sorted((REPO / ".venv" / "lib").glob("python3*/site-packages/torch/lib"))
    paths = [str(p) for p in libs] + [os.environ.get("LD_LIBRARY_PATH", "")]
    # No backtrace: the error line itself is what the results should carry.
    return {"LD_LIBRARY_PATH": ":".join(p for p in paths if p), "RUST_BACKTRACE": "0"}


def _read_blocker(r: Reader, source: dict | None, py: dict, args) -> str | None:
    """Why reader `r` cannot run, or None. "not built:"/"not installed:" lead the reason."""
    if source is None or not source.get("ok"):
        why = source.get("error", "not run") if source else "not run"
        kind = "no input"
        if why.startswith(("not built:", "not installed:")):
            kind = why.split(":", 1)[0]
        return f"{kind}: it reads what write '{r.reads}' makes, which did not run: {why}"
    if r.venv == "rust":
        if not args.loader_bench.is_file():
            return f"not built: {shown(args.loader_bench)} is missing"
        return None
    if py[r.venv].python is None:
        return f"not installed: {py[r.venv].error}"
    if r.name == "mosaicrs-python" and importlib.util.find_spec("mosaicrs") is None:
        return "not installed: the mosaicrs wheel is not in the shared venv (make python)"
    return None


def run_reads(shape: Shape, writes: list[dict], py: dict, args) -> list[dict]:
    """Every read contender at every batch size, each in its own process."""
    outputs = {w["name"]: w for w in writes}
    results = []
    for r in READERS:
        if r.name not in args.contenders:
            continue
        source = outputs.get(r.reads)
        blocker = _read_blocker(r, source, py, args)
        for batch in args.batch_sizes:
            base = {"name": r.name, "label": r.label, "batch_size": batch, "venv": r.venv}
            if blocker:
                results.append(failed(**base, reason=blocker))
                continue
            if r.venv == "rust":
                cmd = loader_bench_cmd(args.loader_bench, shape, source["output"], batch, args)
            else:
                cmd = [
                    str(py[r.venv].python),
                    str(REPO / "bench" / "read_py.py"),
                    f"--contender={r.name}",
                    f"--shape={shape.name}",
                    f"--data={source['output']}",
                    f"--batch-size={batch}",
                    f"--seconds={args.seconds}",
                    f"--loader-bench={args.loader_bench}",
                ]
            env = torch_lib_env() if r.venv == "rust" else None
            doc, err = run_json(cmd, timeout=args.seconds + args.timeout_read, env=env)
            if doc is None:
                results.append(failed(**base, reason=err))
                log(f"{shape.name}: read {r.name} B={batch} FAILED: {err}")
                continue
            if r.venv == "rust":
                try:
                    doc = from_loader_report(doc)
                except (KeyError, TypeError, ValueError) as exc:
                    results.append(failed(**base, reason=f"unexpected report: {exc}"))
                    continue
            doc.update(base, ok=True)
            results.append(doc)
            log(
                f"{shape.name}: read {r.name} B={batch}: {doc['batches_per_s']:,.1f} batches/s, "
                f"first batch {doc['time_to_first_batch_s']:.2f} s, "
                f"peak RSS {doc['memory']['peak_total_rss_bytes'] / 2**20:,.0f} MiB"
            )
    return results


def parse_args(argv: list[str]):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny data, short timings")
    ap.add_argument("--out", type=Path, default=None, help="results folder (default bench/results)")
    ap.add_argument("--work", type=Path, default=None, help="data folder (default OUT/../tmp/data)")
    ap.add_argument("--shapes", default=",".join(SHAPES))
    all_names = [c.name for c in (*WRITERS, *READERS)]
    ap.add_argument("--contenders", default=",".join(all_names))
    ap.add_argument("--jar", type=Path, default=DEFAULT_JAR, help="connector jar")
    ap.add_argument("--loader-bench", type=Path, default=rust_epochs.default_binary(),
                    help="the Rust loader bench binary")
    ap.add_argument("--no-install", action="store_true", help="never create contender venvs")
    ap.add_argument("--update-doc", action="store_true", help="rewrite BENCHMARKS.md's tables")
    ap.add_argument("--rows", type=int, default=None, help="override every shape's row count")
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--seconds", type=float, default=None, help="steady read time per run")
    args = ap.parse_args(argv)
    args.contenders = set(args.contenders.split(","))
    unknown = args.contenders - set(all_names)
    if unknown:
        ap.error(f"unknown contenders {sorted(unknown)}; known: {all_names}")
    args.shapes = args.shapes.split(",")
    for name in args.shapes:
        if name not in SHAPES:
            ap.error(f"unknown shape {name}; known: {sorted(SHAPES)}")
    if args.out is None:
        args.out = REPO / "bench" / "results" / ("tmp/smoke" if args.smoke else "")
    if args.work is None:
        args.work = REPO / "bench" / "results" / "tmp" / ("smoke-data" if args.smoke else "data")
    args.reps = args.reps or (1 if args.smoke else 2)
    args.seconds = args.seconds or (0.3 if args.smoke else 6.0)
    args.batch_sizes = BATCH_SIZES
    args.timeout = 600 if args.smoke else 1800
    args.timeout_read = 120 if args.smoke else 300
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    args.out.mkdir(parents=True, exist_ok=True)
    wanted = {w.venv for w in WRITERS if w.name in args.contenders}
    wanted |= {r.venv for r in READERS if r.name in args.contenders}
    py = interpreters(install=not args.no_install, wanted=wanted | {"plot"})
    doc = {
        "meta": {
            "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(shlex.quote(a) for a in ["bench/run.py", *argv]),
            "git": git_rev(),
            "smoke": args.smoke,
            "machine": machine_info(),
            "spark": "4.0.1, local[2], spark.driver.memory=4g",
            "reps": args.reps,
            "read_seconds": args.seconds,
        },
        "venvs": {name: status.as_json() for name, status in py.items()},
        "artifacts": {
            "connector_jar": {"path": shown(args.jar), "built": args.jar.is_file()},
            "loader_bench": {
                "path": shown(args.loader_bench),
                "built": args.loader_bench.is_file(),
            },
        },
        "shapes": {},
    }
    plan = []
    for name in args.shapes:
        shape = SHAPES[name]
        plan.append((shape, args.rows or (shape.smoke_rows if args.smoke else shape.rows)))
    # The smoke run writes every shape in one Spark session per venv (start-ups dominate
    # on tiny data); the full run gives each shape its own, so memory figures stay apart.
    writes: dict[str, list[dict]] = {}
    for group in [plan] if args.smoke else [[p] for p in plan]:
        writes.update(run_writes(group, py, args))
    for shape, rows in plan:
        doc["shapes"][shape.name] = {
            "rows": rows,
            "description": shape.description,
            "feature_width": shape.width,
            "write": writes[shape.name],
            "read": run_reads(shape, writes[shape.name], py, args),
        }
    doc["meta"]["machine"]["load_average_end"] = os.getloadavg()
    doc["meta"]["wall_s"] = round(time.monotonic() - started, 1)
    results = args.out / "results.json"
    results.write_text(json.dumps(doc, indent=1) + "\n")
    log(f"results in {results}")

    markdown = report.render(doc, plots_dir=args.out)
    (args.out / "comparison.md").write_text(markdown)
    if py["plot"].python is not None:
        proc = subprocess.run(
            [str(py["plot"].python), str(REPO / "bench" / "plot.py"), str(results), str(args.out)],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            log(f"plots failed: {tail(proc.stderr)}")
    else:
        log(f"no plots: {py['plot'].error}")
    if args.update_doc:
        report.update_benchmarks_md(REPO / "BENCHMARKS.md", markdown)
        log("BENCHMARKS.md comparison tables updated")
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
