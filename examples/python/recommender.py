#!/usr/bin/env python3
"""A click model on dense features plus two id-list columns, fed to one
``nn.EmbeddingBag`` by mosaicrs.torch.Loader's ragged batches.

    python examples/python/recommender.py --out clicks.mosaicrs [--epochs 4]

Each row is an impression: ``dense`` (8 float32 features, stored as a
fixed-size list), ``items`` (the ids of the items the user viewed before, 0
to 40 of them, long-tailed) and ``cats`` (1 to 5 category ids), and
``label`` (1.0 when the user clicked). The generated labels depend on all
three, so the held-out accuracy shows that the model learned from the id
lists as well as the dense features.

The dataset is written by ``mosaicrs.write`` from a pyarrow table; a Spark
job writes the same with ``array<bigint>`` id columns::

    df.write.format("mosaicrs").option("fixedLength.dense", "8").save(path)

The loader hands each id-list column as ``Ragged(values, offsets)``,
assembled by the Rust threads (no per-row Python, no collate function);
``concat_ragged`` joins the two into one ``(values, offsets)`` with an id
offset, so one ``EmbeddingBag`` call pools both, as TorchRec's
``KeyedJaggedTensor`` does.
"""

from __future__ import annotations

import argparse
import time
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import pyarrow as pa
import torch
from torch import nn

import mosaicrs
import mosaicrs.torch
from mosaicrs.torch import Ragged, concat_ragged

DENSE = 8
ITEMS = 2000
CATS = 40


def make_dataset(out: str, rows: int = 20_000, seed: int = 0) -> Dict[str, Any]:
    """Writes generated impressions to ``out``; returns the generator's hidden
    weights (for reference only: the model never sees them)."""
    rng = np.random.default_rng(seed)
    dense = rng.standard_normal((rows, DENSE)).astype(np.float32)
    # Long-tailed history lengths (many short, a few long) and popular items.
    n_items = np.minimum(rng.geometric(0.12, rows) - 1, 40)
    n_cats = rng.integers(1, 6, rows)
    item_ids = (rng.zipf(1.3, int(n_items.sum())) - 1) % ITEMS
    cat_ids = rng.integers(0, CATS, int(n_cats.sum()))
    w_dense = rng.standard_normal(DENSE).astype(np.float32)
    w_item = rng.standard_normal(ITEMS).astype(np.float32) * 2.0
    w_cat = rng.standard_normal(CATS).astype(np.float32) * 2.0

    item_off = np.concatenate([[0], np.cumsum(n_items)])
    cat_off = np.concatenate([[0], np.cumsum(n_cats)])
    # A mean over an empty history is 0 (as EmbeddingBag(mode="mean") gives).
    item_sum = np.add.reduceat(np.append(w_item[item_ids], 0.0), item_off[:-1])
    item_mean = np.where(n_items > 0, item_sum / np.maximum(n_items, 1), 0.0)
    cat_mean = np.add.reduceat(w_cat[cat_ids], cat_off[:-1]) / n_cats
    # The id lists weigh more than the dense features (variance about 2.9
    # against 0.7), so a model that ignored them would fall well short.
    score = 0.3 * dense @ w_dense + item_mean + cat_mean + 0.3 * rng.standard_normal(rows)
    label = (score > 0).astype(np.float32)

    table = pa.table({
        "id": pa.array(np.arange(rows, dtype=np.int64)),
        "dense": pa.FixedSizeListArray.from_arrays(pa.array(dense.reshape(-1)), DENSE),
        "items": pa.ListArray.from_arrays(pa.array(item_off.astype(np.int32)),
                                          pa.array(item_ids.astype(np.int64))),
        "cats": pa.ListArray.from_arrays(pa.array(cat_off.astype(np.int32)),
                                         pa.array(cat_ids.astype(np.int64))),
        "label": pa.array(label),
    })
    mosaicrs.write(table, out, mode="overwrite", shard_size="1m")
    return {"positive_rate": float(label.mean())}


class ClickModel(nn.Module):
    """Both id lists pooled by one shared ``EmbeddingBag`` (items take ids
    ``[0, ITEMS)``, categories ``[ITEMS, ITEMS + CATS)``), then an MLP over the
    dense features and the two pooled embeddings."""

    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.dim = dim
        self.bags = nn.EmbeddingBag(ITEMS + CATS, dim, mode="mean")
        self.mlp = nn.Sequential(nn.Linear(DENSE + 2 * dim, 64), nn.ReLU(), nn.Linear(64, 1))

    def forward(self, dense: torch.Tensor, items: Ragged, cats: Ragged) -> torch.Tensor:
        batch = dense.shape[0]
        ids = concat_ragged([items, cats], id_offsets=[0, ITEMS])
        # 2 * B bags, feature-major: rows 0..B-1 the items, B..2B-1 the categories.
        pooled = self.bags(ids.values, ids.offsets[:-1]).view(2, batch, self.dim)
        return self.mlp(torch.cat([dense, pooled[0], pooled[1]], dim=1)).squeeze(1)


def split(rows: int, holdout: float, seed: int) -> Tuple[List[int], List[int]]:
    """Row r is held out when a hash of (seed, r) falls below ``holdout``."""
    r = np.arange(rows, dtype=np.uint64)
    h = (r + np.uint64(seed)) * np.uint64(0x9E3779B97F4A7C15)
    h ^= h >> np.uint64(29)
    held = (h % np.uint64(10_000)) < np.uint64(int(holdout * 10_000))
    return np.flatnonzero(~held).tolist(), np.flatnonzero(held).tolist()


def loader(path: str, batch_size: int, rows: List[int], shuffle: bool, seed: int,
           device: str) -> mosaicrs.torch.Loader:
    return mosaicrs.torch.Loader(path, batch_size, columns=["dense", "items", "cats", "label"],
                                 ragged={"items": "offsets", "cats": "offsets"},
                                 rows=rows, shuffle=shuffle, seed=seed, device=device)


def train(path: str, epochs: int = 4, batch_size: int = 256, seed: int = 0,
          device: Optional[str] = None, quiet: bool = False) -> Dict[str, Any]:
    torch.manual_seed(seed)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    rows = len(mosaicrs.Dataset(path))
    train_rows, held_rows = split(rows, 0.2, seed)
    batches = loader(path, batch_size, train_rows, True, seed, device)
    model = ClickModel().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = nn.BCEWithLogitsLoss()
    start = time.perf_counter()
    for epoch in range(epochs):
        batches.set_epoch(epoch)
        total, n = 0.0, 0
        for batch in batches:
            logits = model(batch["dense"], batch["items"], batch["cats"])
            loss = loss_fn(logits, batch["label"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, n = total + loss.item(), n + 1
        if not quiet:
            print(f"epoch {epoch}  loss {total / n:.4f}", flush=True)
    seconds = time.perf_counter() - start
    batches.close()

    # The held-out rows as one batch, in dataset order.
    with loader(path, len(held_rows), held_rows, False, seed, device) as held:
        batch = next(iter(held))
        model.eval()
        with torch.no_grad():
            predicted = model(batch["dense"], batch["items"], batch["cats"]) > 0
        labels = batch["label"] > 0.5
        accuracy = (predicted == labels).float().mean().item()
        majority = max(labels.float().mean().item(), 1 - labels.float().mean().item())
        ids_per_row = batch["items"].lengths.float().mean().item()
    return {"device": device, "accuracy": accuracy, "majority": majority, "epochs": epochs,
            "seconds": seconds, "train_rows": len(train_rows), "holdout_rows": len(held_rows),
            "items_per_row": ids_per_row, "loss": total / n}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="where the generated dataset goes")
    p.add_argument("--rows", type=int, default=20_000)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--device")
    args = p.parse_args()
    make_dataset(args.out, rows=args.rows)
    r = train(args.out, epochs=args.epochs, device=args.device)
    print(f"device={r['device']} train_rows={r['train_rows']} holdout_rows={r['holdout_rows']} "
          f"items_per_row={r['items_per_row']:.1f} train_s={r['seconds']:.1f}")
    print(f"accuracy={r['accuracy']:.4f} (majority class: {r['majority']:.4f})")


if __name__ == "__main__":
    main()
