#!/usr/bin/env python3
"""JPEG files to decoded image batches: Spark's ``binaryFile`` source reads the
files, writes them as a mosaicrs dataset, and mosaicrs.torch.Loader hands each
batch of file contents to ``torchvision.io.decode_jpeg`` (on the GPU when
present).

    python examples/python/decode_images.py --out images.mosaicrs \
        --jar build/libs/mosaicrs-spark-4_2.13.jar [--images DIR]

Without ``--images`` a few JPEGs of different sizes are generated in a
temporary folder. With ``--jar`` the JVM connector writes
(``df.write.format("mosaicrs")``); without it, the jar-free Python data
source does (``format("mosaicrs_py")``).

The ``content`` column (Spark ``binary``) arrives as
``Ragged(values, offsets)``: the batch's bytes as one ``uint8`` tensor that
the Rust threads filled, and where each file starts. Slicing it gives one
tensor per file without a copy, which is what ``decode_jpeg`` takes. The
``path`` column (a string) arrives the same way and
``mosaicrs.torch.decode_strings`` turns it into Python strings.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch
import torchvision.io

import mosaicrs
import mosaicrs.torch
from mosaicrs.torch import Ragged, decode_strings


def make_images(folder: Path, count: int = 24, seed: int = 0) -> Path:
    """``count`` JPEGs, ``image-XXX.jpg``: colour gradients of assorted sizes."""
    generator = torch.Generator().manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        h, w = 32 + 16 * (i % 5), 48 + 8 * (i % 7)
        base = torch.randint(0, 256, (3, 1, 1), generator=generator, dtype=torch.int64)
        ramp = torch.arange(w).view(1, 1, w) * 2 + torch.arange(h).view(1, h, 1)
        image = ((base + ramp) % 256).to(torch.uint8)
        data = torchvision.io.encode_jpeg(image, quality=90)
        (folder / f"image-{i:03d}.jpg").write_bytes(data.numpy().tobytes())
    return folder


def write_with_spark(images: str, out: str, jar: Optional[str], spark: Any = None) -> int:
    """``spark.read.format("binaryFile")`` of the JPEGs under ``images``
    (columns ``path``, ``modificationTime``, ``length``, ``content``), written
    as a mosaicrs dataset; returns the files written."""
    from pyspark.sql import SparkSession

    own = spark is None
    if own:
        builder = SparkSession.builder.master("local[2]").appName("mosaicrs-decode-images") \
            .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false") \
            .config("spark.log.level", "WARN")
        if jar:
            builder = builder.config("spark.jars", jar)
        spark = builder.getOrCreate()
    try:
        files = spark.read.format("binaryFile").option("pathGlobFilter", "*.jpg").load(images)
        if jar:
            files.write.format("mosaicrs").mode("overwrite").save(out)
        else:
            from mosaicrs.spark import FORMAT, register

            register(spark)
            files.write.format(FORMAT).mode("overwrite").save(out)
    finally:
        if own:
            spark.stop()
    return len(mosaicrs.Dataset(out))


def split_files(content: Ragged) -> List[torch.Tensor]:
    """One ``uint8`` tensor per file: views of the batch's bytes, no copy."""
    bounds = content.offsets.tolist()
    return [content.values[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def decode(path: str, batch_size: int = 8, device: Optional[str] = None,
           quiet: bool = False) -> Dict[str, Any]:
    """Decodes every image of the dataset once, a batch at a time, in dataset
    order; returns the decoded images by file path (on the CPU) and timings."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    # The bytes stay in host memory: decode_jpeg reads its input on the CPU
    # and, with device="cuda", decodes with nvJPEG into GPU tensors.
    loader = mosaicrs.torch.Loader(path, batch_size, columns=["path", "content"],
                                   ragged={"path": "offsets", "content": "offsets"},
                                   shuffle=False, drop_last=False)
    decoded: Dict[str, torch.Tensor] = {}
    images = 0
    start = time.perf_counter()
    for batch in loader:
        names = decode_strings(batch["path"])
        jpegs = split_files(batch["content"])
        # One call for the batch: nvJPEG decodes a list in one go on CUDA.
        out = torchvision.io.decode_jpeg(jpegs, device=device)
        for name, image in zip(names, out):
            # drop_last=False completes the last batch with rows from the
            # start of the order; each file is kept once.
            decoded.setdefault(name, image.cpu())
        images += len(out)
        if not quiet:
            shapes = sorted({tuple(i.shape) for i in out})
            print(f"batch of {len(out)}: {batch['content'].values.numel()} bytes -> "
                  f"{len(shapes)} shapes, e.g. {list(shapes[0])}", flush=True)
    seconds = time.perf_counter() - start
    loader.close()
    return {"device": device, "images": decoded, "decoded": images, "seconds": seconds}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", help="a folder of .jpg files (default: generated ones)")
    p.add_argument("--out", required=True, help="where the dataset goes")
    p.add_argument("--jar", help="the connector jar (else the jar-free mosaicrs_py writer)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="mosaicrs-images-") as tmp:
        images = args.images or str(make_images(Path(tmp) / "images"))
        files = write_with_spark(images, args.out, args.jar)
        print(f"spark wrote {files} files to {args.out}", flush=True)
        r = decode(args.out, batch_size=args.batch_size, device=args.device)
        # Every image equals what torchvision decodes from the file itself.
        for name, image in r["images"].items():
            reference = torchvision.io.decode_jpeg(
                torchvision.io.read_file(name.removeprefix("file:")), device=r["device"]).cpu()
            assert torch.equal(image, reference), name
    print(f"device={r['device']} images={len(r['images'])} decode_s={r['seconds']:.2f} "
          "(each equal to torchvision's decode of its file)")


if __name__ == "__main__":
    main()
