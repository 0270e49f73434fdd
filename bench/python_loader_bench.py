#!/usr/bin/env python3
"""The Python loader (mosaicrs.torch.Loader) against the Rust loader and an
in-memory numpy gather, in one run on the same data.

- rust: the same loader configuration and batch plan, the same epochs driven entirely
  in Rust into Rust-owned buffers recycled as a ring, by a long-lived
  ``mosaicrs-loader-bench --epochs-from-stdin`` (bench/rust_epochs.py; build it with
  ``cargo build --release -p mosaicrs-bench``): no Python per batch. Its epochs
  alternate with the Python loader's, so both see the same machine state.
- python: ``for x, y in mosaicrs.torch.Loader(...)``, torch tensors out.
- python-frames: the same loader with each batch made by a Python frame (the
  path that batches with ragged columns take: fresh aliases per batch, the
  held-slot check in Python), to show what the native per-batch path saves.
- numpy-gather: the table held in memory as one numpy array; each batch is
  ``X[perm[i:i+B]]`` then ``torch.from_numpy`` (the fastest a Python loop can
  be with everything in RAM and one thread).
- cuda (when a GPU is present): the Python loader with ``device="cuda"``
  (pinned ring, side-stream copies), the time the loop waited for data, and
  the host-to-device bandwidth it reached (its samples/s times the bytes of
  a sample) as a fraction of a pinned ``cudaMemcpyAsync`` of 256 MiB
  measured in the same process.

Prints one line per contender (samples/s, best of --reps epochs) and the
ratios to the Rust loader; for rust and python also the process CPU time per
sample (all threads of the process that runs it, median of the reps), which a busy
shared machine
disturbs much less than wall time: there the wall-time ratio mostly says how
the scheduler shared the cores out. Usage::

    python bench/python_loader_bench.py [--rows 2000000] [--features 64] [--batch 1024] \
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
    loader.set_epoch(epoch)
    cpu = time.process_time()
    start = time.perf_counter()
    n = 0
    for x, y in loader:
        n += x.shape[0]
    return n, time.perf_counter() - start, time.process_time() - cpu


def rust_epoch(rust, epoch):
    figures = rust.run(epoch)
    return figures["samples"], figures["seconds"], figures["cpu_seconds"]


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


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=2_000_000)
    p.add_argument("--features", type=int, default=64)
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--dir", default=None)
    p.add_argument("--json", default=None, help="also write the figures here")
    p.add_argument("--loader-bench", type=Path, default=default_binary(),
                   help="the mosaicrs-loader-bench binary that runs the Rust epochs")
    p.add_argument("--no-rust", action="store_true",
                   help="leave the Rust epochs out (ratios against python-frames)")
    args = p.parse_args()
    tmp = args.dir or tempfile.mkdtemp(prefix="mosaicrs-pybench-")
    path = os.path.join(tmp, "data.mosaicrs")
    if not os.path.exists(os.path.join(path, "index.json")):
        make_dataset(path, args.rows, args.features)
    feats = [f"f{j}" for j in range(args.features)]
    loader = mt.Loader(path, args.batch, features=feats, label="label", seed=0,
                       num_threads=args.threads)
    framed = mt.Loader(path, args.batch, features=feats, label="label", seed=0,
                       num_threads=args.threads)
    framed._dense = None  # the Python per-batch path
    native = loader._native
    rust = None if args.no_rust else RustEpochs(
        path, args.batch, seed=0, workers=native.workers, prefetch=native.prefetch,
        binary=args.loader_bench)
    results = {}
    best = lambda runs: max(n / s for n, s in runs)  # noqa: E731
    # Warm the page cache and both paths once.
    if rust is not None:
        rust_epoch(rust, 99)
    python_epoch(loader, 98)
    python_epoch(framed, 98)
    rust_runs, py_runs, framed_runs = [], [], []
    for rep in range(args.reps):  # interleaved, so all see the same machine state
        if rust is not None:
            rust_runs.append(rust_epoch(rust, rep))
        py_runs.append(python_epoch(loader, rep))
        framed_runs.append(python_epoch(framed, rep))
    if rust is not None:
        rust.close()
        results["rust"] = best([(n, s) for n, s, _ in rust_runs])
    framed.close()
    results["python"] = best([(n, s) for n, s, _ in py_runs])
    results["python-frames"] = best([(n, s) for n, s, _ in framed_runs])
    cpu_ns = {}
    for k, runs in (("rust", rust_runs), ("python", py_runs), ("python-frames", framed_runs)):
        if not runs:
            continue
        per = sorted(1e9 * c / n for n, _, c in runs)
        cpu_ns[k] = per[len(per) // 2]

    table = mosaicrs.Dataset(path)
    t = pa.table(table)
    X = np.column_stack([t.column(f).to_numpy() for f in feats]).astype(np.float32)
    y = t.column("label").to_numpy()
    del t
    results["numpy-gather"] = best([numpy_epoch(X, y, args.batch, e) for e in range(args.reps)])

    if torch.cuda.is_available():
        cl = mt.Loader(path, args.batch, features=feats, label="label", seed=0, device="cuda",
                       num_threads=args.threads)
        cuda_epoch(cl, 97)
        runs = [cuda_epoch(cl, e) for e in range(args.reps)]
        results["python-cuda"] = max(n / s for n, s, _ in runs)
        results["python-cuda-wait-share"] = min(w / s for n, s, w in runs)
        sample_bytes = 4 * args.features + 8  # float32 features and an int64 label
        results["python-cuda-bytes-per-s"] = results["python-cuda"] * sample_bytes
        results["pinned-memcpy-bytes-per-s"] = pinned_copy_bandwidth()

    threads = loader.num_threads
    print(f"rows={args.rows} features={args.features} batch={args.batch} "
          f"loader_threads={threads} cores={os.cpu_count()} reps={args.reps}")
    base = "rust" if "rust" in results else "python-frames"
    for k in ("rust", "python", "python-frames", "numpy-gather", "python-cuda"):
        if k in results:
            cpu = f"   cpu {cpu_ns[k]:,.0f} ns/sample" if k in cpu_ns else ""
            print(f"{k:>14}: {results[k]:>14,.0f} samples/s   {results[k] / results[base]:.3f}x "
                  f"{base}{cpu}")
    print(f"python CPU efficiency ({base} cpu / python cpu): "
          f"{cpu_ns[base] / cpu_ns['python']:.3f}  load average {os.getloadavg()[0]:.1f}")
    if "python-cuda-wait-share" in results:
        print(f"python-cuda data wait: {100 * results['python-cuda-wait-share']:.1f}% of the epoch")
        reached, pinned = results["python-cuda-bytes-per-s"], results["pinned-memcpy-bytes-per-s"]
        print(f"python-cuda host-to-device: {reached / 1e9:.2f} GB/s, {reached / pinned:.3f}x of a "
              f"pinned cudaMemcpyAsync in this process ({pinned / 1e9:.2f} GB/s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "threads": threads, "samples_per_s": results,
                       "cpu_ns_per_sample": cpu_ns, "load_average": os.getloadavg()[0]},
                      f, indent=1, default=str)


if __name__ == "__main__":
    main()
