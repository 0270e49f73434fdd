"""Read side, Python contenders: shuffled batches of [B, F] float32 features plus labels.

One contender per process (the orchestrator samples the process tree's RSS from the
outside). The contender's modules are imported first; then the clock starts before the
data is opened, so `time_to_first_batch_s` includes loading, index parsing and worker
start-up. After the first batch, batches
are drawn for `--seconds` (new epochs begin when one ends) and the steady rate is
batches / elapsed time. Every batch is materialised: a float32 [b, F] array or tensor
and a label vector of b values; the first batch's shape and dtype are checked.

Contenders:
- numpy-gather: Parquet read by pyarrow into one in-memory numpy array; each batch is a
  fancy-index gather of a global permutation (the in-memory baseline).
- memcpy: the same array; each batch copies B consecutive rows into a reused buffer
  (the same bytes as a batch, with no gather: the upper bound).
- torch-parquet: the same array in a torch TensorDataset, DataLoader(shuffle=True),
  default per-sample collate, 0 workers (what the PyTorch tutorials do).
- torch-parquet-batched: the same, but the DataLoader's sampler yields whole batches of
  indices (BatchSampler over RandomSampler), so one gather per batch.
- mosaicrs-python: ``mosaicrs.torch.Loader`` (the Python package) over the mosaicrs
  output, global shuffle, its default Rust worker threads; torch tensors out. Then it
  alternates whole epochs of that loader and of the same loader driven in Rust without
  Python (``mosaicrs-loader-bench --epochs-from-stdin``, ``--loader-bench``; see
  rust_epochs.py), best of 3 each, and reports both under ``same_process`` with their
  ratio and each process's CPU time per sample (all its threads, median of the epochs),
  or why the Rust side could not run.
- mds-w0, mds-w2: MosaicML StreamingDataset(shuffle=True) over the MDS output of the
  write side, in a torch DataLoader with 0 or 2 workers; the 16 scalar columns are
  stacked into [B, 16] (the embedding is one ndarray column already).

Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path
from typing import List, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rust_epochs import RustEpochs, default_binary  # noqa: E402
from shapes import SHAPES, Shape  # noqa: E402

SEED = 1234


def load_parquet(path: Path, shape: Shape):
    """Features [N, F] float32 and labels [N] int64 from a Parquet folder, via pyarrow."""
    import numpy as np
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=[*shape.feature_columns, shape.label])
    labels = table[shape.label].to_numpy().astype(np.int64, copy=False)
    if shape.is_array:
        emb = table["emb"].combine_chunks()
        feats = emb.flatten().to_numpy().reshape(len(emb), shape.width)
    else:
        feats = np.stack([table[c].to_numpy() for c in shape.feature_columns], axis=1)
    return np.ascontiguousarray(feats, dtype=np.float32), labels


def numpy_gather(path: Path, shape: Shape, batch: int):
    import numpy as np

    feats, labels = load_parquet(path, shape)
    rng = np.random.default_rng(SEED)
    while True:
        perm = rng.permutation(len(labels))
        for start in range(0, len(perm), batch):
            idx = perm[start : start + batch]
            yield feats[idx], labels[idx]


def memcpy(path: Path, shape: Shape, batch: int):
    import numpy as np

    feats, labels = load_parquet(path, shape)
    out_x = np.empty((batch, shape.width), dtype=np.float32)
    out_y = np.empty(batch, dtype=np.int64)
    while True:
        for start in range(0, len(labels), batch):
            n = min(batch, len(labels) - start)
            np.copyto(out_x[:n], feats[start : start + n])
            np.copyto(out_y[:n], labels[start : start + n])
            yield out_x[:n], out_y[:n]


def _torch_parquet(path: Path, shape: Shape, batch: int, batched: bool):
    import torch
    from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset

    feats, labels = load_parquet(path, shape)
    ds = TensorDataset(torch.from_numpy(feats), torch.from_numpy(labels))
    gen = torch.Generator().manual_seed(SEED)
    if batched:
        sampler = BatchSampler(RandomSampler(ds, generator=gen), batch, drop_last=False)
        loader = DataLoader(ds, sampler=sampler, batch_size=None, num_workers=0)
    else:
        loader = DataLoader(ds, batch_size=batch, shuffle=True, generator=gen, num_workers=0)
    while True:
        yield from loader


def torch_parquet(path, shape, batch):
    return _torch_parquet(path, shape, batch, batched=False)


def torch_parquet_batched(path, shape, batch):
    return _torch_parquet(path, shape, batch, batched=True)


def _mds(path: Path, shape: Shape, batch: int, workers: int):
    import torch
    from streaming import StreamingDataset
    from streaming.base.util import clean_stale_shared_memory
    from torch.utils.data import DataLoader

    clean_stale_shared_memory()
    ds = StreamingDataset(
        local=str(path), remote=None, shuffle=True, shuffle_seed=SEED, batch_size=batch
    )
    loader = DataLoader(ds, batch_size=batch, num_workers=workers)
    cols = shape.feature_columns
    while True:
        for sample in loader:
            if shape.is_array:
                x = sample["emb"]
            else:
                x = torch.stack([sample[c] for c in cols], dim=1)
            yield x, sample[shape.label]


def _mosaicrs_loader(path: Path, shape: Shape, batch: int):
    import mosaicrs.torch as mt

    return mt.Loader(
        str(path), batch, features=list(shape.feature_columns), label=shape.label, seed=SEED
    )


def mosaicrs_python(path: Path, shape: Shape, batch: int):
    loader = _mosaicrs_loader(path, shape, batch)
    epoch = 0
    while True:
        loader.set_epoch(epoch)
        yield from loader
        epoch += 1


def mosaicrs_python_vs_rust(
    path: Path, shape: Shape, batch: int, binary: Path, reps: int = 3
) -> dict:
    """Whole epochs of the Python loader and of the same loader driven in Rust alone,
    alternating so that both see the same machine state; best of `reps` each."""
    loader = _mosaicrs_loader(path, shape, batch)
    native = loader._native
    try:
        rust = RustEpochs(
            str(path), batch, seed=SEED, workers=native.workers, prefetch=native.prefetch,
            binary=binary,
        )
    except FileNotFoundError as exc:
        loader.close()
        return {"error": str(exc)}

    def python_epoch(epoch: int) -> Tuple[float, float]:
        """(samples/s, CPU ns per sample of this process, every thread)."""
        loader.set_epoch(epoch)
        cpu = time.process_time()
        started = time.perf_counter()
        samples = sum(int(x.shape[0]) for x, _ in loader)
        seconds = time.perf_counter() - started
        return samples / seconds, 1e9 * (time.process_time() - cpu) / samples

    def rust_epoch(epoch: int) -> Tuple[float, float]:
        figures = rust.run(epoch)
        return (figures["samples"] / figures["seconds"],
                1e9 * figures["cpu_seconds"] / figures["samples"])

    with rust:
        rust_epoch(100)  # warm both paths once
        python_epoch(101)
        rust_runs, python = [], []
        for rep in range(reps):
            rust_runs.append(rust_epoch(rep))
            python.append(python_epoch(rep))
    loader.close()

    def median_cpu(runs: List[Tuple[float, float]]) -> float:
        return sorted(c for _, c in runs)[len(runs) // 2]

    rust_best, python_best = max(r for r, _ in rust_runs), max(r for r, _ in python)
    return {
        "rust_samples_per_s": rust_best,
        "python_samples_per_s": python_best,
        "python_over_rust": python_best / rust_best,
        "rust_cpu_ns_per_sample": median_cpu(rust_runs),
        "python_cpu_ns_per_sample": median_cpu(python),
        "loader_threads": native.workers,
        "reps": reps,
    }


def mds_w0(path, shape, batch):
    return _mds(path, shape, batch, workers=0)


def mds_w2(path, shape, batch):
    return _mds(path, shape, batch, workers=2)


READERS = {
    "numpy-gather": numpy_gather,
    "memcpy": memcpy,
    "mosaicrs-python": mosaicrs_python,
    "torch-parquet": torch_parquet,
    "torch-parquet-batched": torch_parquet_batched,
    "mds-w0": mds_w0,
    "mds-w2": mds_w2,
}


# Modules each contender needs, imported before the clock starts: the Rust binary has
# libtorch loaded before its clock starts too, so imports are not time to first batch.
_ARROW = ["numpy", "pyarrow.parquet"]
_TORCH = [*_ARROW, "torch", "torch.utils.data"]
_MDS = ["torch", "torch.utils.data", "streaming"]
IMPORTS = {
    "numpy-gather": _ARROW,
    "memcpy": _ARROW,
    "mosaicrs-python": ["torch", "mosaicrs", "mosaicrs.torch"],
    "torch-parquet": _TORCH,
    "torch-parquet-batched": _TORCH,
    "mds-w0": _MDS,
    "mds-w2": _MDS,
}


def _check(x, y, shape: Shape, batch: int) -> int:
    rows = int(x.shape[0])
    if tuple(x.shape) != (rows, shape.width) or rows == 0 or rows > batch:
        want = f"[<= {batch}, {shape.width}]"
        raise ValueError(f"feature batch has shape {tuple(x.shape)}, want {want}")
    if "float32" not in str(x.dtype):
        raise ValueError(f"feature batch has dtype {x.dtype}, want float32")
    if tuple(y.shape) != (rows,):
        raise ValueError(f"label batch has shape {tuple(y.shape)}, want [{rows}]")
    return rows


def measure(
    name: str, path: Path, shape: Shape, batch: int, seconds: float, loader_bench: Path
) -> dict:
    """Time to first batch, then the steady rate over `seconds` of batches."""
    for module in IMPORTS[name]:
        importlib.import_module(module)
    started = time.perf_counter()
    batches = READERS[name](path, shape, batch)
    x, y = next(batches)
    first = time.perf_counter()
    _check(x, y, shape, batch)
    count = samples = 0
    now = first
    while now - first < seconds:
        x, y = next(batches)
        samples += int(x.shape[0])
        count += 1
        now = time.perf_counter()
    elapsed = now - first
    del batches
    result = {
        "time_to_first_batch_s": first - started,
        "batches": count,
        "elapsed_s": elapsed,
        "batches_per_s": count / elapsed,
        "samples_per_s": samples / elapsed,
    }
    if name == "mosaicrs-python":
        result["same_process"] = mosaicrs_python_vs_rust(path, shape, batch, loader_bench)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--contender", required=True, choices=sorted(READERS))
    ap.add_argument("--shape", required=True, choices=sorted(SHAPES))
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--batch-size", type=int, required=True)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--loader-bench", type=Path, default=default_binary(),
                    help="mosaicrs-loader-bench, for the Rust side of mosaicrs-python")
    args = ap.parse_args()
    result = measure(
        args.contender, args.data, SHAPES[args.shape], args.batch_size, args.seconds,
        args.loader_bench,
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
