#!/usr/bin/env python3
"""The Python loader (mosaicrs.torch.Loader) against the Rust loader and an
in-memory numpy gather, in one run on the same data.

- rust: the same loader configuration and batch plan, the same epochs driven entirely
  in Rust into Rust-owned buffers recycled as a ring, by a long-lived
  ``mosaicrs-loader-bench --epochs-from-stdin`` (bench/rust_epochs.py; build it with
  ``cargo build --release -p mosaicrs-bench``): no Python per batch. Its epochs
  alternate with the Python loader's, so both see the same machine state.
- python: ``for x, y in mosaicrs.torch.Loader(...)``, torch tensors out.
- python-frames (``--frames``, or the baseline with ``--no-rust``): the same
  loader with each batch made by a Python frame (the path that batches with
  ragged columns take: fresh aliases per batch, the held-slot check in Python),
  to show what the native per-batch path saves.
- numpy-gather: the table held in memory as one numpy array; each batch is
  ``X[perm[i:i+B]]`` then ``torch.from_numpy`` (the fastest a Python loop can
  be with everything in RAM and one thread; best of ``--reps`` epochs).
- cuda (when a GPU is present): the Python loader with ``device="cuda"``
  (pinned ring, side-stream copies), the time the loop waited for data, and
  the host-to-device bandwidth it reached (its samples/s times the bytes of
  a sample) as a fraction of a pinned ``cudaMemcpyAsync`` of 256 MiB
  measured in the same process.

Each batch size is measured in paired rounds (``--reps``, default 7, after
``--warmup`` unmeasured epochs of each side): a round is one Rust epoch and one
Python epoch, alternating which goes first, so both sides of a pair see the same
machine state. Both sides are checked to run the same loader configuration (batch
size, global shuffle, drop_last, float32 features, workers, prefetch, ring, steps).
The headline per batch size is the MEDIAN over the rounds of python / rust (each
round's samples/s ratio), with the best, the worst and their spread beside it, and
for each side the process CPU time per sample (all threads of the process that runs
it, median of the rounds), which a busy shared machine disturbs much less than wall
time; for Python also the consumer thread's CPU time per batch. Usage::

    python bench/python_loader_bench.py --rows 500000 --features 16 --batch 256 4096 \
        --reps 7 [--dir DIR] [--json out.json] \
        [--loader-bench target/release/mosaicrs-loader-bench]
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

import mosaicrs
import mosaicrs.torch as mt

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rust_epochs import RustEpochs, default_binary  # noqa: E402


def make_dataset(path, rows, features, seed=0):
    rng = np.random.default_rng(seed)
    chunk = 200_000
    schema = pa.schema([(f"f{j}", pa.float32()) for j in range(features)] + [("label", pa.int64())])

    def batches():
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            x = rng.standard_normal((n, features), dtype=np.float32)
            cols = [pa.array(x[:, j]) for j in range(features)]
            cols.append(pa.array(np.arange(start, start + n, dtype=np.int64) % 10))
            yield pa.record_batch(cols, schema=schema)

    mosaicrs.write(pa.RecordBatchReader.from_batches(schema, batches()), path, mode="overwrite")


def python_epoch(loader, epoch):
    """One whole epoch of ``for x, y in loader``: (samples, seconds, process CPU seconds,
    consumer-thread CPU seconds). The loop body only counts batches (drop_last: every
    batch has ``batch_size`` samples), as the Rust side only counts them, so the figure
    is the loader's cost, not the loop's."""
    loader.set_epoch(epoch)
    cpu = time.process_time()
    thread = time.thread_time()
    start = time.perf_counter()
    batches = 0
    for _x, _y in loader:
        batches += 1
    seconds = time.perf_counter() - start
    return (batches * loader.batch_size, seconds, time.process_time() - cpu,
            time.thread_time() - thread)


def rust_epoch(rust, epoch):
    figures = rust.run(epoch)
    return figures["samples"], figures["seconds"], figures["cpu_seconds"], None


def cuda_epoch(loader, epoch):
    loader.set_epoch(epoch)
    torch.cuda.synchronize()
    start = time.perf_counter()
    n = 0
    wait = 0.0
    it = iter(loader)
    while True:
        t0 = time.perf_counter()
        try:
            x, y = next(it)
        except StopIteration:
            break
        wait += time.perf_counter() - t0
        (x.sum() + y.sum()).item()  # a tiny "step" that needs the data on the device
        n += x.shape[0]
    torch.cuda.synchronize()
    return n, time.perf_counter() - start, wait


def pinned_copy_bandwidth(nbytes=256 << 20, reps=5):
    """Bytes/s of one pinned host-to-device copy (cudaMemcpyAsync), best of reps."""
    src = torch.empty(nbytes, dtype=torch.uint8, pin_memory=True)
    dst = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
    dst.copy_(src, non_blocking=True)
    torch.cuda.synchronize()
    best = 0.0
    for _ in range(reps):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        dst.copy_(src, non_blocking=True)
        end.record()
        end.synchronize()
        best = max(best, nbytes / (start.elapsed_time(end) / 1e3))
    return best


def numpy_epoch(X, y, batch, epoch):
    rng = np.random.default_rng(epoch)
    perm = rng.permutation(len(X))
    start = time.perf_counter()
    n = 0
    for i in range(0, len(perm) - batch + 1, batch):
        idx = perm[i:i + batch]
        xb, yb = torch.from_numpy(X[idx]), torch.from_numpy(y[idx])
        n += xb.shape[0]
    return n, time.perf_counter() - start


def median(values):
    values = sorted(values)
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def paired_rounds(path, batch, feats, args):
    """Rounds of one Rust epoch and one Python epoch (and one python-frames epoch with
    ``--frames``) at batch size ``batch``, alternating which goes first, after warm-up
    epochs. Returns the figures of every round and their summary."""
    loader = mt.Loader(path, batch, features=feats, label="label", seed=0,
                       num_threads=args.threads)
    native = loader._native
    framed = None
    if args.frames or args.no_rust:
        framed = mt.Loader(path, batch, features=feats, label="label", seed=0,
                           num_threads=args.threads)
        framed._dense = None  # the Python per-batch path
    rust = None if args.no_rust else RustEpochs(
        path, batch, seed=0, workers=native.workers, prefetch=native.prefetch,
        binary=args.loader_bench)
    if rust is not None:
        # The same work on both sides: the same loader configuration (global shuffle,
        # drop_last, float32 features and the label of every other column, the same
        # workers, prefetch and ring), so the ratio is the Python side's cost alone.
        ready = rust.ready
        mine = {"batch_size": native.batch_size, "workers": native.workers,
                "prefetch": native.prefetch, "ring": native.ring,
                "steps_per_epoch": native.steps_per_epoch()}
        theirs = {k: ready[k] for k in mine}
        if mine != theirs:
            raise SystemExit(f"the Rust side is configured otherwise: python {mine}, rust {theirs}")
    contenders = {"python": lambda e: python_epoch(loader, e)}
    if rust is not None:
        contenders["rust"] = lambda e: rust_epoch(rust, e)
    if framed is not None:
        contenders["python-frames"] = lambda e: python_epoch(framed, e)
    names = list(contenders)
    for w in range(args.warmup):  # the page cache, the ring, both processes warm
        for name in names:
            contenders[name](90 + w)
    rounds = []
    for r in range(args.reps):
        # Alternating the order too: neither side always runs right after the other.
        order = names if r % 2 == 0 else names[::-1]
        figures = {}
        for name in order:
            n, s, cpu, thread = contenders[name](r)
            figures[name] = {"samples": n, "seconds": s, "samples_per_s": n / s,
                             "cpu_ns_per_sample": 1e9 * cpu / n}
            if thread is not None:
                figures[name]["consumer_us_per_batch"] = 1e6 * thread / (n / batch)
        figures["load_average"] = os.getloadavg()[0]
        rounds.append(figures)
    if rust is not None:
        rust.close()
        if any(f["rust"]["samples"] != f["python"]["samples"] for f in rounds):
            raise SystemExit("the Rust and Python epochs delivered different sample counts")
    if framed is not None:
        framed.close()
    threads = loader.num_threads
    loader.close()

    base = "rust" if rust is not None else "python-frames"
    summary = {"batch": batch, "threads": threads, "base": base, "rounds": len(rounds)}
    for name in names:
        rates = [f[name]["samples_per_s"] for f in rounds]
        cpus = [f[name]["cpu_ns_per_sample"] for f in rounds]
        summary[name] = {"samples_per_s_median": median(rates), "samples_per_s_best": max(rates),
                         "cpu_ns_per_sample_median": median(cpus),
                         "cpu_ns_per_sample_min": min(cpus), "cpu_ns_per_sample_max": max(cpus)}
        consumer = [f[name]["consumer_us_per_batch"] for f in rounds
                    if "consumer_us_per_batch" in f[name]]
        if consumer:
            summary[name]["consumer_us_per_batch_median"] = median(consumer)
    for name in names:
        if name == base:
            continue
        ratios = [f[name]["samples_per_s"] / f[base]["samples_per_s"] for f in rounds]
        cpu_eff = [f[base]["cpu_ns_per_sample"] / f[name]["cpu_ns_per_sample"] for f in rounds]
        summary[f"{name}_over_{base}"] = {
            "median": median(ratios), "best": max(ratios), "worst": min(ratios),
            "spread": max(ratios) - min(ratios), "per_round": ratios,
            "cpu_efficiency_median": median(cpu_eff)}
    loads = [f["load_average"] for f in rounds]
    summary["load_average"] = [min(loads), max(loads)]
    return summary, rounds


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=500_000)
    p.add_argument("--features", type=int, default=16)
    p.add_argument("--batch", type=int, nargs="+", default=[256, 4096],
                   help="batch sizes, each measured on its own (default: 256 4096)")
    p.add_argument("--reps", type=int, default=7,
                   help="paired rounds per batch size (one epoch of each side per round)")
    p.add_argument("--warmup", type=int, default=1, help="unmeasured epochs of each side first")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--dir", default=None)
    p.add_argument("--json", default=None, help="also write the figures here")
    p.add_argument("--loader-bench", type=Path, default=default_binary(),
                   help="the mosaicrs-loader-bench binary that runs the Rust epochs")
    p.add_argument("--no-rust", action="store_true",
                   help="leave the Rust epochs out (ratios against python-frames)")
    p.add_argument("--frames", action="store_true",
                   help="also run python-frames (the Python per-batch path) in each round")
    p.add_argument("--no-numpy", action="store_true", help="leave the numpy gather out")
    args = p.parse_args()
    if args.reps < 1:
        raise SystemExit("--reps must be at least 1")
    tmp = args.dir or tempfile.mkdtemp(prefix="mosaicrs-pybench-")
    path = os.path.join(tmp, "data.mosaicrs")
    if not os.path.exists(os.path.join(path, "index.json")):
        make_dataset(path, args.rows, args.features)
    feats = [f"f{j}" for j in range(args.features)]

    X = y = None
    if not args.no_numpy or torch.cuda.is_available():
        t = pa.table(mosaicrs.Dataset(path))
        X = np.column_stack([t.column(f).to_numpy() for f in feats]).astype(np.float32)
        y = t.column("label").to_numpy()
        del t

    out = {"args": vars(args), "cores": os.cpu_count(), "batches": {}}
    print(f"rows={args.rows} features={args.features} cores={os.cpu_count()} "
          f"paired rounds={args.reps} (after {args.warmup} warm-up)")
    for batch in args.batch:
        summary, rounds = paired_rounds(path, batch, feats, args)
        results = {"summary": summary, "rounds": rounds}
        if not args.no_numpy:
            results["numpy-gather_samples_per_s_best"] = max(
                n / s for n, s in (numpy_epoch(X, y, batch, e) for e in range(args.reps)))
        if torch.cuda.is_available():
            results.update(cuda_figures(path, batch, feats, args))
        out["batches"][str(batch)] = results
        report(summary, results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1, default=str)


def cuda_figures(path, batch, feats, args):
    cl = mt.Loader(path, batch, features=feats, label="label", seed=0, device="cuda",
                   num_threads=args.threads)
    cuda_epoch(cl, 97)
    runs = [cuda_epoch(cl, e) for e in range(args.reps)]
    cl.close()
    sample_bytes = 4 * args.features + 8  # float32 features and an int64 label
    best = max(n / s for n, s, _ in runs)
    return {"python-cuda": best,
            "python-cuda-wait-share": min(w / s for n, s, w in runs),
            "python-cuda-bytes-per-s": best * sample_bytes,
            "pinned-memcpy-bytes-per-s": pinned_copy_bandwidth()}


def report(summary, results):
    batch, base = summary["batch"], summary["base"]
    lo, hi = summary["load_average"]
    print(f"batch={batch} loader_threads={summary['threads']} load average {lo:.1f} to {hi:.1f}")
    for name in ("rust", "python", "python-frames"):
        if name not in summary:
            continue
        f = summary[name]
        consumer = (f"   consumer {f['consumer_us_per_batch_median']:.2f} us/batch"
                    if "consumer_us_per_batch_median" in f else "")
        print(f"{name:>14}: {f['samples_per_s_median']:>12,.0f} samples/s median "
              f"({f['samples_per_s_best']:,.0f} best)   cpu {f['cpu_ns_per_sample_median']:,.0f} "
              f"ns/sample median ({f['cpu_ns_per_sample_min']:,.0f} to "
              f"{f['cpu_ns_per_sample_max']:,.0f}){consumer}")
    for name in ("python", "python-frames"):
        key = f"{name}_over_{base}"
        if key not in summary:
            continue
        r = summary[key]
        print(f"{name} / {base}: {r['median']:.3f}x median of {summary['rounds']} paired rounds "
              f"(best {r['best']:.3f}x, worst {r['worst']:.3f}x, spread {r['spread']:.3f}); "
              f"CPU efficiency ({base} cpu / {name} cpu) {r['cpu_efficiency_median']:.3f}")
    if "numpy-gather_samples_per_s_best" in results:
        print(f"  numpy-gather: {results['numpy-gather_samples_per_s_best']:>12,.0f} samples/s best")
    if "python-cuda" in results:
        print(f"   python-cuda: {results['python-cuda']:>12,.0f} samples/s best, data wait "
              f"{100 * results['python-cuda-wait-share']:.1f}% of the epoch")
        reached, pinned = results["python-cuda-bytes-per-s"], results["pinned-memcpy-bytes-per-s"]
        print(f"python-cuda host-to-device: {reached / 1e9:.2f} GB/s, {reached / pinned:.3f}x of a "
              f"pinned cudaMemcpyAsync in this process ({pinned / 1e9:.2f} GB/s)")


if __name__ == "__main__":
    main()
