"""Columnar dataset through `mosaicrs.torch.Loader` against an in-memory numpy gather.

The dataset is the one `rust-core/examples/columnar_bench.rs` writes (16 float32 columns f0..f15
and an int64 label, stored column by column as Spark writes them, 2,000,000 rows):

    cargo build --release -p mosaicrs --features testing --example columnar_bench
    target/release/examples/columnar_bench /tmp/columnar-2m 2000000 256,4096 3
    .venv/bin/python bench/columnar_py_bench.py /tmp/columnar-2m

Per batch size, epochs of the loader (global shuffle, features + label) and of a numpy fancy-index
gather of a [N, 16] float32 array plus labels (with `torch.from_numpy`) alternate in one process;
epoch 0 builds the loader's row-major blocks and is left out of the best figures.
"""
import time, sys, os, numpy as np, torch
import mosaicrs.torch as mt
path = sys.argv[1]
n = 2_000_000
rng = np.random.default_rng(0)
X = rng.random((n, 16), dtype=np.float32); Y = rng.integers(0, 10, n)
feats = [f"f{i}" for i in range(16)]
def numpy_epoch(B, seed):
    perm = np.random.default_rng(seed).permutation(n)
    t = time.perf_counter(); s = 0
    for i in range(0, n - B + 1, B):
        idx = perm[i:i + B]; x = torch.from_numpy(X[idx]); y = torch.from_numpy(Y[idx]); s += len(x)
    return s / (time.perf_counter() - t)
def loader_epoch(L, e):
    L.set_epoch(e); t = time.perf_counter(); s = 0
    for x, y in L: s += len(x)
    return s / (time.perf_counter() - t)
print("load", open("/proc/loadavg").read().strip())
for B in (256, 4096):
    L = mt.Loader(path, batch_size=B, features=feats, label="label", shuffle=True)
    best = {"numpy": 0, "loader": 0}
    for r in range(4):
        lo = loader_epoch(L, r); nu = numpy_epoch(B, r)
        if r > 0:  # epoch 0 builds the row blocks
            best["numpy"] = max(best["numpy"], nu); best["loader"] = max(best["loader"], lo)
        print(f"B={B} epoch {r}: mosaicrs.torch.Loader {lo/1e6:.2f} M/s, numpy gather {nu/1e6:.2f} M/s, ratio {lo/nu:.2f}")
    print(f"B={B} best of epochs 1-3: loader {best['loader']/1e6:.2f} M/s, numpy {best['numpy']/1e6:.2f} M/s, ratio {best['loader']/best['numpy']:.2f}")
print("load", open("/proc/loadavg").read().strip())
