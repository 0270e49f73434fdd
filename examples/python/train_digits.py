#!/usr/bin/env python3
"""The seed scenario in Python: PySpark reads a CSV, writes it as a mosaicrs
dataset, and a plain PyTorch loop trains on it through mosaicrs.torch.Loader.

    python scripts/make_digits_csv.py digits.csv
    python examples/python/train_digits.py --csv digits.csv --out digits.mosaicrs \
        --jar build/libs/mosaicrs-spark-4_2.13.jar

With ``--jar`` the JVM connector writes (``df.write.format("mosaicrs")``);
without it, the jar-free Python data source does (``format("mosaicrs_py")``).
Trains on CUDA when present, else CPU, and prints the held-out accuracy.
"""

import argparse
import time
from typing import Optional

import numpy as np
import pyarrow as pa
import torch
from torch import nn

import mosaicrs
import mosaicrs.torch


def write_with_spark(csv: str, out: str, jar: Optional[str], spark=None) -> None:
    from pyspark.sql import SparkSession

    own = spark is None
    if own:
        builder = SparkSession.builder.master("local[2]").appName("mosaicrs-python-demo") \
            .config("spark.ui.enabled", "false").config("spark.log.level", "WARN")
        if jar:
            builder = builder.config("spark.jars", jar)
        spark = builder.getOrCreate()
    try:
        df = spark.read.csv(csv, header=True, inferSchema=True)
        df = df.withColumn("label", df["label"].cast("long"))
        if jar:
            df.write.format("mosaicrs").mode("overwrite").save(out)
        else:
            from mosaicrs.spark import FORMAT, register

            register(spark)
            df.write.format(FORMAT).mode("overwrite").save(out)
    finally:
        if own:
            spark.stop()


def split(rows: int, holdout: float, seed: int):
    """Row r is held out when a hash of (seed, r) falls below `holdout`."""
    r = np.arange(rows, dtype=np.uint64)
    h = (r + np.uint64(seed)) * np.uint64(0x9E3779B97F4A7C15)
    h ^= h >> np.uint64(29)
    held = (h % np.uint64(10_000)) < np.uint64(int(holdout * 10_000))
    return np.flatnonzero(~held).tolist(), np.flatnonzero(held).tolist()


def train(path: str, epochs: int = 30, batch_size: int = 64, seed: int = 0,
          device: Optional[str] = None) -> dict:
    torch.manual_seed(seed)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    ds = mosaicrs.Dataset(path)
    features = [f"f{i}" for i in range(64)]
    train_rows, held_rows = split(len(ds), 0.2, seed)

    # The three lines that replace a torch DataLoader:
    loader = mosaicrs.torch.Loader(ds, batch_size, features=features, label="label",
                                   rows=train_rows, shuffle=True, seed=seed, device=device)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    for epoch in range(epochs):
        loader.set_epoch(epoch)
        model.train()
        for x, y in loader:
            x, y = x.to(device, non_blocking=True) / 16.0, y.to(device, non_blocking=True)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
    seconds = time.perf_counter() - start

    held = ds.take(held_rows, columns=features + ["label"])
    hx = torch.from_numpy(np.column_stack(
        [held.column(f).to_numpy().astype(np.float32) for f in features])).to(device) / 16.0
    hy = torch.from_numpy(held.column("label").to_numpy().copy()).to(device)
    model.eval()
    with torch.no_grad():
        accuracy = (model(hx).argmax(1) == hy).float().mean().item()
    return {"accuracy": accuracy, "holdout_rows": len(held_rows), "train_rows": len(train_rows),
            "epochs": epochs, "seconds": seconds, "device": device, "loss": loss.item()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--csv", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--jar", help="the connector jar (else the jar-free mosaicrs_py writer)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--device")
    p.add_argument("--torch-threads", type=int, default=1,
                   help="torch intra-op threads (default 1: OpenMP threads busy-wait between "
                        "the small ops of this model and starve the loader's Rust threads)")
    args = p.parse_args()
    torch.set_num_threads(args.torch_threads)
    write_with_spark(args.csv, args.out, args.jar)
    r = train(args.out, epochs=args.epochs, device=args.device)
    print(f"device={r['device']} train_rows={r['train_rows']} holdout_rows={r['holdout_rows']} "
          f"epochs={r['epochs']} train_s={r['seconds']:.2f}")
    print(f"accuracy={r['accuracy']:.4f}")


if __name__ == "__main__":
    main()
