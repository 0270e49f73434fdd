#!/usr/bin/env python3
"""Mixing datasets: what a three-source mix costs against the same rows from one source.

    .venv/bin/python bench/mix_bench.py            # full run (what `make bench-mix` does)
    .venv/bin/python bench/mix_bench.py --quick --no-install   # small data, no downloads

One generated table (16 float32 features, an int64 label and an int64 id; deterministic
from --seed) is written once per run as one mosaicrs dataset and as three, its first 60%,
next 30% and last 10% of rows, and the same again as MDS shards (``streaming.MDSWriter``,
in the streaming venv). Each contender reads shuffled ``(features [B, 16], label [B])``
batches over whole epochs; the one-source and the mixed reader of a contender run in the
same process with the same options (batch size, shuffle, seed, threads), after a warm-up
epoch each, their epochs alternating (one, mix, one, mix, ...) so that a change of load hits
both alike:

- mosaicrs-one: ``mosaicrs.torch.Loader(path, B, label="label")``;
- mosaicrs-mix: ``mosaicrs.torch.Loader(streams=[Stream(s0, weight=0.6), Stream(s1,
  weight=0.3), Stream(s2, weight=0.1)], batch_size=B, label="label")``: the epoch is every
  row of the three sources once, the same rows as mosaicrs-one, each batch holding the
  sources' shares to within one sample;
- mds-one, mds-mix: MosaicML ``StreamingDataset(shuffle=True)`` over one MDS dataset, and
  over three ``Stream(local=..., proportion=...)`` with ``epoch_size`` the row count, in a
  torch ``DataLoader`` with 0 workers. Their rate is taken over the first --mds-samples
  samples of each epoch (default 100,000): at a few thousand samples/s on the 2-core
  machine, whole epochs would take minutes each.

The figure that matters is mosaicrs-mix / mosaicrs-one (target: the mix costs at most 10%
of the one-source rate): the median over rounds of the paired ratio (one epoch's seconds /
the mix epoch's right after it), with the ratio of the best epochs and the range of the
paired ratios beside it, and each reader's process CPU time per sample (all threads; median
over rounds), which load barely moves. Writes OUT (default
bench/results/mix.json; --quick: bench/results/tmp/mix-quick.json) and, for a full run,
the ``mix`` key of bench/results/results.json, and prints the table.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
FEATURES = 16
WEIGHTS = (0.6, 0.3, 0.1)
SUITE_RESULTS = REPO / "bench" / "results" / "results.json"
TARGET_COST = 0.10

STARTED = time.monotonic()


def log(msg: str) -> None:
    print(f"mix-bench: [{time.monotonic() - STARTED:6.1f} s] {msg}", file=sys.stderr, flush=True)


def split_rows(rows: int) -> List[Tuple[int, int]]:
    """The three sources' row ranges: the first 60%, the next 30%, the rest."""
    a = rows * 6 // 10
    b = a + rows * 3 // 10
    return [(0, a), (a, b), (b, rows)]


def table(rows: int, seed: int) -> Any:
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, FEATURES)).astype(np.float32)
    cols: Dict[str, Any] = {f"f{j}": x[:, j] for j in range(FEATURES)}
    cols["label"] = (np.arange(rows) % 10).astype(np.int64)
    cols["id"] = np.arange(rows, dtype=np.int64)
    return pa.table(cols)


def median(values: List[float]) -> float:
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def alternate(runs: Dict[str, Callable[[int], Tuple[int, float, float]]],
              reps: int) -> Dict[str, Any]:
    """`reps` rounds of one epoch of each run in turn (so that a load change hits both
    alike): per run its epoch times and process CPU times, the best and the median, and
    samples/s of the median epoch (and of the best)."""
    times: Dict[str, List[float]] = {name: [] for name in runs}
    cpu: Dict[str, List[float]] = {name: [] for name in runs}
    counts: Dict[str, set] = {name: set() for name in runs}
    for epoch in range(reps):
        for name, run in runs.items():
            n, s, c = run(epoch)
            times[name].append(s)
            cpu[name].append(c)
            counts[name].add(n)
    out = {}
    for name in runs:
        n = max(counts[name])
        best, mid = min(times[name]), median(times[name])
        out[name] = {"samples": n, "counts_equal": len(counts[name]) == 1,
                     "epoch_s": times[name], "cpu_s": cpu[name], "best_s": best,
                     "median_s": mid, "samples_per_s": n / mid,
                     "best_samples_per_s": n / best,
                     "cpu_ns_per_sample": median([c / n * 1e9 for c in cpu[name]])}
    return out


def paired(one: Dict[str, Any], mix: Dict[str, Any]) -> Dict[str, float]:
    """mix rate / one rate of alternating runs: the median of the rounds' paired ratios
    (one epoch's seconds / the mix epoch's after it; the headline), the ratio of the best
    epochs, the lowest and highest round, and mix / one process CPU per sample."""
    rounds = [a / b for a, b in zip(one["epoch_s"], mix["epoch_s"])]
    return {"median": median(rounds), "best": one["best_s"] / mix["best_s"],
            "lowest": min(rounds), "highest": max(rounds),
            "cpu": mix["cpu_ns_per_sample"] / one["cpu_ns_per_sample"]}


# --- roles, each in its own process --------------------------------------------------------


def role_read_mosaicrs(args: argparse.Namespace) -> Dict[str, Any]:
    import mosaicrs
    import mosaicrs.torch as mt

    work, B = args.work, args.batch
    features = [f"f{j}" for j in range(FEATURES)]
    # The same options for both: only the sources differ.
    opts: Dict[str, Any] = dict(batch_size=B, shuffle=True, seed=1, num_threads=args.threads)
    streams = [mosaicrs.Stream(str(work / f"s{k}.mosaicrs"), weight=w)
               for k, w in enumerate(WEIGHTS)]
    one = mt.Loader(str(work / "one.mosaicrs"), label="label", features=features, **opts)
    mix = mt.Loader(streams=streams, label="label", features=features, **opts)

    # Both read the same rows: every id in an epoch (the last batch is padded).
    ids = {}
    for name, kw in (("one", dict(path=str(work / "one.mosaicrs"))), ("mix", dict(streams=streams))):
        seen = [b["id"] for b in mt.Loader(**kw, columns=["id"], **{**opts, "batch_size": 4096,
                                                                    "drop_last": False})]
        ids[name] = {int(i) for b in seen for i in b.tolist()}
    if ids["one"] != ids["mix"] or ids["one"] != set(range(args.rows)):
        raise SystemExit("mosaicrs-one and mosaicrs-mix do not read the same rows")

    def reader(loader: Any) -> Callable[[int], Tuple[int, float, float]]:
        def epoch(e: int) -> Tuple[int, float, float]:
            loader.set_epoch(e)
            cpu = time.process_time()
            started = time.perf_counter()
            n = 0
            for x, _ in loader:
                n += x.shape[0]
            return n, time.perf_counter() - started, time.process_time() - cpu
        return epoch

    reader(one)(100)  # warm: pages mapped, threads started
    reader(mix)(100)
    return alternate({"mosaicrs-one": reader(one), "mosaicrs-mix": reader(mix)}, args.reps)


def role_write_mds(args: argparse.Namespace) -> Dict[str, Any]:
    import numpy as np
    import pyarrow.parquet as pq
    from streaming import MDSWriter

    t = pq.read_table(args.work / "rows.parquet")
    x = np.stack([t.column(f"f{j}").to_numpy() for j in range(FEATURES)], axis=1)
    label = t.column("label").to_numpy()
    started = time.perf_counter()
    parts = [("one", 0, len(label))] + [(f"s{k}", a, b)
                                         for k, (a, b) in enumerate(split_rows(len(label)))]
    for name, a, b in parts:
        out = args.work / f"{name}.mds"
        shutil.rmtree(out, ignore_errors=True)
        with MDSWriter(out=str(out), columns={"x": "ndarray:float32", "label": "int64"},
                       compression=None) as w:
            for i in range(a, b):
                w.write({"x": x[i], "label": int(label[i])})
    return {"write_s": time.perf_counter() - started}


def role_read_mds(args: argparse.Namespace) -> Dict[str, Any]:
    from streaming import Stream, StreamingDataset
    from streaming.base.util import clean_stale_shared_memory
    from torch.utils.data import DataLoader

    work, B = args.work, args.batch

    def reader(make: Callable[[], Any]) -> Callable[[int], Tuple[int, float, float]]:
        def epoch(_: int) -> Tuple[int, float, float]:
            clean_stale_shared_memory()
            loader = DataLoader(make(), batch_size=B, drop_last=True, num_workers=0)
            cpu = time.process_time()
            started = time.perf_counter()
            n = 0
            for batch in loader:
                n += batch["x"].shape[0]
                if n >= args.mds_samples:
                    break
            return n, time.perf_counter() - started, time.process_time() - cpu
        return epoch

    def one() -> Any:
        return StreamingDataset(local=str(work / "one.mds"), remote=None, shuffle=True,
                                shuffle_seed=1, batch_size=B)

    def mix() -> Any:
        streams = [Stream(local=str(work / f"s{k}.mds"), proportion=w)
                   for k, w in enumerate(WEIGHTS)]
        return StreamingDataset(streams=streams, shuffle=True, shuffle_seed=1, batch_size=B,
                                epoch_size=args.rows)

    return alternate({"mds-one": reader(one), "mds-mix": reader(mix)}, args.mds_reps)


ROLES: Dict[str, Callable[[argparse.Namespace], Dict[str, Any]]] = {
    "read-mosaicrs": role_read_mosaicrs,
    "write-mds": role_write_mds,
    "read-mds": role_read_mds,
}


# --- the orchestrator ------------------------------------------------------------------


def write_data(args: argparse.Namespace) -> Dict[str, Any]:
    import pyarrow.parquet as pq

    import mosaicrs

    args.work.mkdir(parents=True, exist_ok=True)
    t = table(args.rows, args.seed)
    pq.write_table(t, args.work / "rows.parquet")
    started = time.perf_counter()
    parts = [("one", t)] + [(f"s{k}", t.slice(a, b - a))
                            for k, (a, b) in enumerate(split_rows(args.rows))]
    for name, part in parts:
        path = args.work / f"{name}.mosaicrs"
        shutil.rmtree(path, ignore_errors=True)
        mosaicrs.write(part, str(path))
    return {"rows": args.rows, "features": FEATURES,
            "sources": [b - a for a, b in split_rows(args.rows)],
            "mosaicrs_write_s": time.perf_counter() - started}


def run(args: argparse.Namespace, argv: List[str]) -> Dict[str, Any]:
    sys.path.insert(0, str(BENCH_DIR))
    import run as suite  # noqa: E402  (bench/run.py: machine_info, run_json, git_rev)
    import venvs  # noqa: E402

    data = write_data(args)
    log(f"wrote {args.rows} rows as one and three mosaicrs datasets under {args.work}")
    common = [f"--work={args.work}", f"--batch={args.batch}", f"--rows={args.rows}",
              f"--reps={args.reps}", f"--mds-reps={args.mds_reps}",
              f"--mds-samples={args.mds_samples}", *([f"--threads={args.threads}"] if args.threads else [])]
    me = str(Path(__file__).resolve())
    entries: Dict[str, Any] = {}
    log("mosaicrs-one and mosaicrs-mix in one process")
    doc, err = suite.run_json([sys.executable, me, "--role", "read-mosaicrs", *common],
                              timeout=args.timeout)
    if doc is None:
        entries["mosaicrs"] = {"error": err}
    else:
        entries.update({k: v for k, v in doc.items() if k.startswith("mosaicrs")})
        entries["mosaicrs_memory"] = doc.get("memory")
    streaming = venvs.ensure("streaming", install=not args.no_install, log=log)
    if args.streaming_python:
        streaming = venvs.VenvStatus("streaming", Path(args.streaming_python))
    if streaming.python is None:
        entries["mds"] = {"error": f"not installed: {streaming.error}"}
    else:
        env = {"PYTHONPATH": ""}
        log(f"MDS write and read in {streaming.python}")
        doc, err = suite.run_json([str(streaming.python), me, "--role", "write-mds", *common],
                                  timeout=args.timeout, env=env)
        if doc is None:
            entries["mds"] = {"error": f"write failed: {err}"}
        else:
            data["mds_write_s"] = doc["write_s"]
            doc, err = suite.run_json([str(streaming.python), me, "--role", "read-mds",
                                       *common], timeout=args.timeout, env=env)
            if doc is None:
                entries["mds"] = {"error": err}
            else:
                entries.update({k: v for k, v in doc.items() if k.startswith("mds")})
                entries["mds_memory"] = doc.get("memory")
    ratios: Dict[str, Any] = {}

    def entry(name: str) -> Optional[Dict[str, Any]]:
        e = entries.get(name)
        return e if isinstance(e, dict) and "epoch_s" in e else None

    one, mix, mds_one, mds_mix = (entry(n) for n in
                                  ("mosaicrs-one", "mosaicrs-mix", "mds-one", "mds-mix"))
    if one and mix:
        r = paired(one, mix)
        ratios["mosaicrs_mix_over_one"] = r["median"]
        ratios["mosaicrs_mix_over_one_best"] = r["best"]
        ratios["mosaicrs_mix_over_one_rounds"] = [r["lowest"], r["highest"]]
        ratios["mosaicrs_mix_cpu_over_one"] = r["cpu"]
        ratios["mosaicrs_mix_cost"] = 1 - r["median"]
        ratios["mosaicrs_mix_within_target"] = 1 - r["median"] <= TARGET_COST
    if mds_one and mds_mix:
        ratios["mds_mix_over_one"] = paired(mds_one, mds_mix)["median"]
    if mix and mds_mix:
        ratios["mosaicrs_mix_over_mds_mix"] = mix["samples_per_s"] / mds_mix["samples_per_s"]
    return {
        "meta": {
            "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(shlex.quote(a) for a in ["bench/mix_bench.py", *argv]),
            "git": suite.git_rev(),
            "quick": args.quick,
            "machine": suite.machine_info(),
            "batch_size": args.batch,
            "reps": args.reps,
            "threads": args.threads,
            "headline": "median over alternating rounds of the paired ratio mix/one",
            "mds_reps": args.mds_reps,
            "mds_samples": args.mds_samples,
            "weights": list(WEIGHTS),
            "note": args.note,
            "streaming_python": str(streaming.python) if streaming.python else None,
        },
        "data": data,
        "entries": entries,
        "ratios": ratios,
    }


def print_table(doc: Dict[str, Any]) -> None:
    print(f"{'contender':<14} {'samples/s':>12} {'median s':>9} {'best s':>9} {'ns CPU/sample':>14}")
    for name, e in doc["entries"].items():
        if not isinstance(e, dict) or name.endswith("memory"):
            continue
        if "error" in e:
            print(f"{name:<14} {e['error']}")
            continue
        print(f"{name:<14} {e['samples_per_s']:>12,.0f} {e['median_s']:>9.4f} {e['best_s']:>9.4f}"
              f" {e['cpu_ns_per_sample']:>14,.0f}")
    for k, v in doc["ratios"].items():
        if isinstance(v, float):
            print(f"{k}: {v:.3f}")
        elif isinstance(v, list):
            print(f"{k}: {' .. '.join(f'{x:.3f}' for x in v)}")
        else:
            print(f"{k}: {v}")
    print(f"load average: {doc['meta'].get('loadavg', '?')}")


def parse_args(argv: List[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small data, one round")
    ap.add_argument("--no-install", action="store_true",
                    help="use the streaming venv only when it exists")
    ap.add_argument("--streaming-python", default=None,
                    help="the interpreter of a MosaicML Streaming venv made elsewhere")
    ap.add_argument("--rows", type=int, default=None)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--reps", type=int, default=None,
                    help="mosaicrs rounds (one epoch of each reader per round)")
    ap.add_argument("--threads", type=int, default=None,
                    help="loader threads (num_threads) of both mosaicrs readers")
    ap.add_argument("--mds-reps", type=int, default=None, help="MDS rounds")
    ap.add_argument("--mds-samples", type=int, default=100_000,
                    help="samples of each MDS epoch timed")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--note", default="")
    ap.add_argument("--role", choices=sorted(ROLES), default=None)
    args = ap.parse_args(argv)
    args.rows = args.rows or (50_000 if args.quick else 500_000)
    args.reps = args.reps or (2 if args.quick else 15)
    args.mds_reps = args.mds_reps or (1 if args.quick else 3)
    tmp = REPO / "bench" / "results" / "tmp"
    args.work = args.work or tmp / ("mix-quick-data" if args.quick else "mix-data")
    args.json = args.json or (tmp / "mix-quick.json" if args.quick
                              else REPO / "bench" / "results" / "mix.json")
    args.timeout = 300 if args.quick else 1800
    return args


def main(argv: List[str]) -> int:
    args = parse_args(argv)
    if args.role:
        doc = ROLES[args.role](args)
        print(json.dumps(doc))
        if args.role == "read-mosaicrs":
            r = paired(doc["mosaicrs-one"], doc["mosaicrs-mix"])
            log(f"mix/one {r['median']:.3f} (median of {args.reps} paired rounds; best epochs "
                f"{r['best']:.3f}, rounds {r['lowest']:.3f} .. {r['highest']:.3f}; CPU/sample "
                f"mix/one {r['cpu']:.3f}); load average {Path('/proc/loadavg').read_text().strip()}")
        return 0
    doc = run(args, argv)
    doc["meta"]["wall_s"] = round(time.monotonic() - STARTED, 1)
    doc["meta"]["loadavg"] = Path("/proc/loadavg").read_text().strip()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=1) + "\n")
    log(f"wrote {args.json}")
    if not args.quick:
        try:
            suite = json.loads(SUITE_RESULTS.read_text())
        except (OSError, ValueError):
            suite = {}
        suite["mix"] = doc
        SUITE_RESULTS.write_text(json.dumps(suite, indent=1) + "\n")
        log(f"mix figures also in {SUITE_RESULTS}")
    print_table(doc)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
