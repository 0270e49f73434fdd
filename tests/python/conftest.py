"""Fixtures of the Python package tests: datasets written through
`mosaicrs.write` (the Rust writer and commit) from pyarrow tables."""

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

mosaicrs = pytest.importorskip(
    "mosaicrs", reason="the mosaicrs wheel is not installed: run `make python`"
)


def all_types_table(n: int = 1000, seed: int = 1) -> pa.Table:
    """One column of every type the loader turns into tensors, plus strings."""
    rng = np.random.default_rng(seed)
    i = np.arange(n)
    return pa.table({
        "id": pa.array(i, pa.int64()),
        "i8": pa.array((i % 200 - 100).astype(np.int8)),
        "i16": pa.array((i * 7 % 60000 - 30000).astype(np.int16)),
        "i32": pa.array((i * 1000003 % 2**31).astype(np.int32)),
        "u8": pa.array((i % 256).astype(np.uint8)),
        "u16": pa.array((i * 3 % 65536).astype(np.uint16)),
        "u32": pa.array((i * 2654435761 % 2**32).astype(np.uint32)),
        "u64": pa.array(i.astype(np.uint64) * np.uint64(9_000_000_000_000_001)),
        "f32": pa.array(rng.standard_normal(n).astype(np.float32)),
        "f64": pa.array(rng.standard_normal(n)),
        "flag": pa.array(i % 3 == 0),
        "day": pa.array([dt.date(2020, 1, 1) + dt.timedelta(days=int(k)) for k in i], pa.date32()),
        "ts": pa.array((i * 1_000_000).astype("datetime64[us]"), pa.timestamp("us")),
        "emb": pa.array([[float(k), float(k) + 0.5, -float(k)] for k in i],
                        pa.list_(pa.float32())),
        "name": pa.array([f"row-{k}" for k in i]),
    })


def digits_like(n: int = 600, features: int = 8, classes: int = 3, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, features)).astype(np.float32)
    label = (np.arange(n) % classes).astype(np.int64)
    cols = {f"f{j}": x[:, j] for j in range(features)}
    cols["label"] = label
    cols["id"] = np.arange(n, dtype=np.int64)
    return pa.table(cols)


@pytest.fixture
def types_dataset(tmp_path) -> tuple:
    table = all_types_table()
    path = tmp_path / "types.mosaicrs"
    # Small shards and batches: several shards, several record batches each.
    mosaicrs.write(table, path, shard_size="16k", batch_rows=100)
    return path, table


@pytest.fixture
def ids_dataset(tmp_path) -> Path:
    """ids 0..1000 in several shards, x = id / 4."""
    n = 1000
    table = pa.table({"id": np.arange(n, dtype=np.int64),
                      "x": np.arange(n, dtype=np.float64) / 4})
    path = tmp_path / "ids.mosaicrs"
    mosaicrs.write(table, path, shard_size="4k", batch_rows=64)
    return path


def run_torchrun(worker: Path, *args: object, nproc: int = 2) -> None:
    """Runs ``worker`` under ``torchrun --nproc_per_node=nproc`` on the CPU
    (gloo), with a free port, and fails the test with its output if any
    rank fails."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("RANK", None)
    env.pop("WORLD_SIZE", None)
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}",
         "--master_port=0", "--rdzv_backend=c10d", "--rdzv_endpoint=localhost:0",
         str(worker), *map(str, args)],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def keep_loosely(tensor, kept: list, weak: bool) -> None:
    """Keeps ``tensor`` of a batch only through its ``untyped_storage()``, or
    only through a weak reference (``weak``), with a copy of its values: what
    a batch held that way must still hold later (see :func:`assert_kept`)."""
    import weakref

    values = tensor.clone()
    if weak:
        kept.append((weakref.ref(tensor), None, values))
    else:
        geometry = (tensor.storage_offset(), tuple(tensor.shape), tensor.stride())
        kept.append((tensor.untyped_storage(), geometry, values))


def assert_kept(kept: list) -> None:
    """Each batch kept by :func:`keep_loosely` still holds its values: the
    storage was not refilled, and a weak reference is dead or gives the same
    values."""
    import torch

    for k, (held, geometry, values) in enumerate(kept):
        if geometry is None:
            tensor = held()
            assert tensor is None or torch.equal(tensor, values), f"weakly kept batch {k}"
        else:
            tensor = torch.empty(0, dtype=values.dtype).set_(held, *geometry)
            assert torch.equal(tensor, values), f"batch {k} kept through its storage"


def assert_ring_reused(loader, kept: list) -> None:
    """Once ``kept`` is let go, another epoch runs in the slots there are:
    what held the batches was let go with it."""
    kept.clear()
    slots = len(loader._slots)
    for _ in loader:
        pass
    assert len(loader._slots) == slots
