"""Columnar dataset through `mosaicrs.torch.Loader` against an in-memory numpy gather.

The dataset is the one `rust-core/examples/columnar_bench.rs` writes (16 float32 columns f0..f15
and an int64 label, stored column by column as Spark writes them, 2,000,000 rows):

    cargo build --release -p mosaicrs --features testing --example columnar_bench
    target/release/examples/columnar_bench /tmp/columnar-2m 2000000 256,4096 3
    .venv/bin/python bench/columnar_py_bench.py /tmp/columnar-2m

Per batch size, one epoch of the loader (global shuffle, features + label, 2 workers) and one epoch
of the numpy gather make a round; the two alternate in one process (which one goes first alternates
too). The numpy gather draws a fresh permutation of the rows per epoch and, per full batch, gathers
`X[idx]` ([B, 16] float32) and `Y[idx]` (int64) by fancy indexing into fresh arrays and wraps both
with `torch.from_numpy`; X and Y are in memory, row-major.

Round 0 is the loader's first epoch, which builds its row-major blocks: it is reported on its own.
The headline per batch size is the median over rounds 1..R of the paired ratio (loader samples/s
over the numpy samples/s of the same round), with the best ratio and the spread (min to max)
beside it, and each side's CPU time per sample (process CPU, all threads: the loader's workers
included) as medians.
"""

import argparse
import json
import statistics
import sys
import time
from typing import Callable, Dict, List, Tuple

import numpy as np
import torch

import mosaicrs.torch as mt

FEATURES = 16


def timed(run: Callable[[], int]) -> Tuple[float, float]:
    """Samples/s and process CPU ns/sample of `run` (which returns its sample count)."""
    wall, cpu = time.perf_counter(), time.process_time()
    samples = run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return samples / wall, cpu * 1e9 / max(samples, 1)


def numpy_epoch(x: np.ndarray, y: np.ndarray, batch: int, seed: int) -> int:
    n = len(x)
    perm = np.random.default_rng(seed).permutation(n)
    samples = 0
    for i in range(0, n - batch + 1, batch):
        idx = perm[i : i + batch]
        xs, ys = torch.from_numpy(x[idx]), torch.from_numpy(y[idx])
        samples += len(xs) + 0 * len(ys)
    return samples


def loader_epoch(loader: "mt.Loader", epoch: int) -> int:
    loader.set_epoch(epoch)
    samples = 0
    for xs, _ in loader:
        samples += len(xs)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", help="the dataset columnar_bench writes")
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows of the dataset (and of X)")
    parser.add_argument("--batch-sizes", default="256,4096")
    parser.add_argument("--rounds", type=int, default=7, help="rounds after the first epoch")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    feats = [f"f{i}" for i in range(FEATURES)]
    n = args.rows
    rng = np.random.default_rng(0)
    x = rng.random((n, FEATURES), dtype=np.float32)
    y = rng.integers(0, 10, n)
    results: Dict[str, Dict[str, object]] = {}
    print("load", open("/proc/loadavg").read().strip(), flush=True)
    for batch in [int(b) for b in args.batch_sizes.split(",")]:
        loader = mt.Loader(args.data, batch_size=batch, features=feats, label="label", shuffle=True)
        first_l, first_l_cpu = timed(lambda: loader_epoch(loader, 0))
        first_n, first_n_cpu = timed(lambda: numpy_epoch(x, y, batch, 0))
        print(
            f"B={batch} first epoch (builds the row blocks): loader {first_l / 1e6:.2f} M/s "
            f"({first_l_cpu:.0f} ns CPU/sample), numpy {first_n / 1e6:.2f} M/s "
            f"({first_n_cpu:.0f} ns CPU/sample), ratio {first_l / first_n:.2f}",
            flush=True,
        )
        rows: List[Dict[str, float]] = []
        for r in range(1, args.rounds + 1):
            order = ("loader", "numpy") if r % 2 else ("numpy", "loader")
            got: Dict[str, Tuple[float, float]] = {}
            for who in order:
                if who == "loader":
                    got[who] = timed(lambda: loader_epoch(loader, r))
                else:
                    got[who] = timed(lambda: numpy_epoch(x, y, batch, r))
            (l, l_cpu), (nu, nu_cpu) = got["loader"], got["numpy"]
            rows.append({"loader": l, "numpy": nu, "ratio": l / nu, "loader_cpu": l_cpu, "numpy_cpu": nu_cpu})
            print(
                f"B={batch} round {r}: loader {l / 1e6:.2f} M/s ({l_cpu:.0f} ns CPU/sample), "
                f"numpy {nu / 1e6:.2f} M/s ({nu_cpu:.0f} ns CPU/sample), ratio {l / nu:.2f}",
                flush=True,
            )
        ratios = [row["ratio"] for row in rows]
        med = {k: statistics.median(row[k] for row in rows) for k in rows[0]}
        load = open("/proc/loadavg").read().strip()
        print(
            f"B={batch} MEDIAN of {len(rows)} paired ratios: {statistics.median(ratios):.2f}x "
            f"(best {max(ratios):.2f}, spread {min(ratios):.2f} to {max(ratios):.2f}); "
            f"median loader {med['loader'] / 1e6:.2f} M/s at {med['loader_cpu']:.0f} ns CPU/sample, "
            f"numpy {med['numpy'] / 1e6:.2f} M/s at {med['numpy_cpu']:.0f} ns CPU/sample; "
            f"first epoch {first_l / first_n:.2f}x; load {load}",
            flush=True,
        )
        results[str(batch)] = {
            "median_ratio": round(statistics.median(ratios), 3),
            "best_ratio": round(max(ratios), 3),
            "min_ratio": round(min(ratios), 3),
            "loader_samples_per_s_median": round(med["loader"]),
            "numpy_samples_per_s_median": round(med["numpy"]),
            "loader_cpu_ns_per_sample_median": round(med["loader_cpu"], 1),
            "numpy_cpu_ns_per_sample_median": round(med["numpy_cpu"], 1),
            "first_epoch_ratio": round(first_l / first_n, 3),
            "rounds": rows,
            "load_average_end": load,
        }
        del loader
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
