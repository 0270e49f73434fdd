#!/usr/bin/env python3
"""Token packing and ragged id lists: mosaicrs against the Python paths people use.

    .venv/bin/python bench/tokens_bench.py            # full run (what `make bench-tokens` does)
    .venv/bin/python bench/tokens_bench.py --quick --no-install   # a few M tokens, no downloads

Token packing. One generated corpus of token documents (lengths lognormal, mean about 500,
clipped to [1, 8192]; int32 ids below the GPT-2 vocabulary of 50,257, the last id being the
eos; deterministic from --seed) is written once per run as Parquet, as a mosaicrs dataset
(``mosaicrs.write``), as MDS shards (``streaming.MDSWriter``, in the streaming venv) and as
a Hugging Face dataset (``Dataset.from_parquet`` + ``save_to_disk``, in the hf venv). Every
contender packs the same way, each document followed by the eos, the stream cut into
``[B, L]`` int64 ``input_ids``, and is timed over whole epochs (best of --reps):

- hf-w0, hf-w2: ``datasets`` ``map(batched=True)`` with the ``group_texts`` recipe of
  transformers' ``run_clm.py`` (concatenate a map batch of 1,000 documents, cut into L,
  drop the batch's remainder; without the recipe's ``labels`` copy), then
  ``with_format("torch")`` in a shuffling torch ``DataLoader`` with 0 or 2 workers. The map
  and the iteration are timed separately; the rate counts iteration only (a later epoch
  reuses the map's cache), the rate with the map is reported beside it.
- mds-w0, mds-w2: MosaicML ``StreamingDataset(shuffle=True)`` over the MDS shards, packed in
  Python by an ``IterableDataset`` that copies documents into L-token rows, in a
  ``DataLoader`` with 0 or 2 workers.
- memcpy: one numpy copy of one contiguous int32 array of all the tokens, the ceiling, in
  the same process as mosaicrs.
- mosaicrs: ``mosaicrs.torch.TokenLoader(path, seq_len=L, batch_size=B, eos_id=...,
  shuffle=True)`` with its default outputs: int64 input_ids and position_ids, cu_seqlens
  and max_seqlen (16 bytes written per token). Variants: mosaicrs-int32 (``dtype`` and
  ``position_ids`` int32, 8 bytes), mosaicrs-ids (``position_ids=False``, 8 bytes),
  mosaicrs-full (``attention_mask=True`` as well, int64, 24 bytes), and
  mosaicrs-dataloader (``TokenIterableDataset`` in ``DataLoader(batch_size=None)``), and
  mosaicrs-dataloader-keep (the same with ``collate_fn`` handing each batch on as it is).

Ragged id lists (the recommender shape). 13 float32 dense columns, an int64 label and two
``list<int64>`` id columns (lengths 1..50, long-tailed, mean about 7.5), written as Parquet and
as a mosaicrs dataset (the dense columns packed row-major into one ``dense`` column, as
``mosaicrs.write(pack=...)`` offers); shuffled batches of B rows with the dense features as
``[B, 13]`` and each id list as ``(values, offsets)`` (TorchRec / ``nn.EmbeddingBag`` style):

- torch-w0, torch-w2: a map-style torch ``Dataset`` over numpy arrays read by pyarrow (a row
  is its dense values, label and two id slices), ``DataLoader(shuffle=True)`` with a collate
  that concatenates the id slices and builds the offsets, 0 or 2 workers (the target's
  reference).
- torch-batched: the same arrays, a ``BatchSampler`` handing whole batches of indices to one
  vectorized numpy gather per batch (the fastest a Python path gets; no target).
- mosaicrs-ragged: ``mosaicrs.torch.Loader(columns=["dense", "label", ...],
  ragged={id column: "offsets"})``.

A contender that cannot run says why (``not installed: ...`` for a contender venv that is
missing, ``unavailable: ...`` for a mosaicrs API this build lacks, else its error). Writes
OUT (default bench/results/tokens.json; --quick: bench/results/tmp/tokens-quick.json), where
each part carries its own run's meta and a run of one part (``--parts``) keeps the other's
figures, and prints the tables.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent

VOCAB_SIZE = 50_257
EOS_ID = VOCAB_SIZE - 1  # GPT-2's <|endoftext|>; the documents' ids stay below it
MEAN_DOC_TOKENS = 500
MAX_DOC_TOKENS = 8192
DOC_SIGMA = 1.0  # lognormal shape: median about 300, one document in 2,000 over 8,192
DENSE = [f"d{j}" for j in range(13)]
ID_LISTS = {"history": 1_000_000, "categories": 10_000}  # id column: ids below this
MAX_IDS = 50
SEED = 0

# The contenders, their venv ("shared" is .venv) and what they are.
TOKEN_CONTENDERS: Dict[str, Tuple[str, str]] = {
    "hf-w0": ("hf", "HF datasets map(group_texts) + DataLoader, 0 workers"),
    "hf-w2": ("hf", "HF datasets map(group_texts) + DataLoader, 2 workers"),
    "mds-w0": ("streaming", "MosaicML StreamingDataset + packing in Python, 0 workers"),
    "mds-w2": ("streaming", "MosaicML StreamingDataset + packing in Python, 2 workers"),
    "memcpy": ("shared", "memcpy of the token bytes (numpy copy, int32)"),
    "mosaicrs": ("shared", "mosaicrs.torch.TokenLoader (int64 input_ids, position_ids)"),
    "mosaicrs-int32": ("shared", "mosaicrs.torch.TokenLoader, int32 input_ids, position_ids"),
    "mosaicrs-ids": ("shared", "mosaicrs.torch.TokenLoader, position_ids=False"),
    "mosaicrs-full": ("shared", "mosaicrs.torch.TokenLoader, attention_mask=True (int64)"),
    "mosaicrs-dataloader": ("shared", "DataLoader(mosaicrs.torch.TokenIterableDataset, "
                                      "batch_size=None)"),
    "mosaicrs-dataloader-keep": ("shared", "DataLoader(mosaicrs.torch.TokenIterableDataset, "
                                           "batch_size=None, collate_fn=keep_batch)"),
}
MOSAICRS_TOKEN_VARIANTS = ("mosaicrs", "mosaicrs-int32", "mosaicrs-ids", "mosaicrs-full",
                           "mosaicrs-dataloader", "mosaicrs-dataloader-keep")
# Each variant's TokenLoader options besides the shared ones (dtypes by name: torch is
# imported in the contender's process only).
MOSAICRS_TOKEN_OPTIONS: Dict[str, Dict[str, Any]] = {
    "mosaicrs-int32": {"dtype": "int32", "position_ids": "int32"},
    "mosaicrs-ids": {"position_ids": False},
    "mosaicrs-full": {"attention_mask": True},
}
RAGGED_CONTENDERS: Dict[str, Tuple[str, str]] = {
    "torch-w0": ("shared", "torch DataLoader, map-style rows + offsets collate, 0 workers"),
    "torch-w2": ("shared", "torch DataLoader, map-style rows + offsets collate, 2 workers"),
    "torch-batched": ("shared", "torch DataLoader, batch sampler + vectorized numpy gather"),
    "mosaicrs-ragged": ("shared", "mosaicrs.torch.Loader, (values, offsets) id lists"),
}
PYTHON_TOKEN_PATHS = ("hf-w0", "hf-w2", "mds-w0", "mds-w2")
PYTHON_RAGGED_PATHS = ("torch-w0", "torch-w2")
TARGETS = {"python": 20.0, "memcpy": 0.3, "ragged": 5.0}


STARTED = time.monotonic()


def log(msg: str) -> None:
    print(f"tokens-bench: [{time.monotonic() - STARTED:6.1f} s] {msg}", file=sys.stderr, flush=True)


# --- the data ----------------------------------------------------------------------------


def doc_lengths(total_tokens: int, seed: int) -> Any:
    """Document lengths, lognormal with mean about MEAN_DOC_TOKENS, summing to about
    `total_tokens` (whole documents; the last one is shortened to hit it exactly)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    mu = np.log(MEAN_DOC_TOKENS) - DOC_SIGMA**2 / 2
    count = int(total_tokens / MEAN_DOC_TOKENS * 1.1) + 16
    lengths = np.clip(np.rint(rng.lognormal(mu, DOC_SIGMA, count)), 1, MAX_DOC_TOKENS)
    lengths = lengths.astype(np.int64)
    ends = np.cumsum(lengths)
    docs = int(np.searchsorted(ends, total_tokens)) + 1
    lengths = lengths[:docs]
    lengths[-1] -= int(ends[docs - 1]) - total_tokens
    if lengths[-1] < 1:  # cannot happen with count > total/mean, kept as a guard
        raise ValueError("corpus generation produced an empty last document")
    return lengths


def token_corpus(total_tokens: int, seed: int) -> Any:
    """The corpus as a pyarrow table with one `input_ids: list<int32>` column."""
    import numpy as np
    import pyarrow as pa

    lengths = doc_lengths(total_tokens, seed)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    values = np.random.default_rng(seed + 1).integers(0, EOS_ID, total_tokens, dtype=np.int32)
    ids = pa.ListArray.from_arrays(pa.array(offsets), pa.array(values))
    return pa.table({"input_ids": ids})


def ragged_table(rows: int, seed: int) -> Any:
    """The recommender shape: DENSE float32 columns, a label, the ID_LISTS id lists."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed + 2)
    cols: Dict[str, Any] = {
        name: rng.standard_normal(rows, dtype=np.float32) for name in DENSE
    }
    cols["label"] = rng.integers(0, 2, rows, dtype=np.int64)
    for name, vocab in ID_LISTS.items():
        # Median 5, mean about 7.5, a long tail up to MAX_IDS.
        lengths = np.clip(np.rint(rng.lognormal(1.6, 0.9, rows)), 1, MAX_IDS).astype(np.int64)
        offsets = np.zeros(rows + 1, dtype=np.int32)
        np.cumsum(lengths, out=offsets[1:])
        values = rng.integers(0, vocab, int(offsets[-1]), dtype=np.int64)
        cols[name] = pa.ListArray.from_arrays(pa.array(offsets), pa.array(values))
    return pa.table(cols)


def packed_expectation(lengths: Any, seq_len: int, batch: int) -> Dict[str, int]:
    """What a packer with drop_last yields from documents of `lengths` (+ an eos each)."""
    stream = int(lengths.sum()) + len(lengths)
    sequences = stream // seq_len
    steps = sequences // batch
    return {"stream_tokens": stream, "sequences": sequences, "steps": steps,
            "tokens": steps * batch * seq_len}


# --- helpers for the timed parts -------------------------------------------------------


def timed_epochs(run_epoch: Callable[[int], Tuple[int, float]], reps: int) -> Dict[str, Any]:
    """`reps` epochs of `run_epoch(epoch) -> (tokens or samples, seconds)`, best kept."""
    runs = [run_epoch(epoch) for epoch in range(reps)]
    counts = {n for n, _ in runs}
    best = min(s for _, s in runs)
    return {"count": max(counts), "epoch_s": [s for _, s in runs], "best_s": best,
            "per_s": max(counts) / best, "counts_equal": len(counts) == 1}


def workers_of(name: str) -> int:
    """The DataLoader worker count in a contender's name ("hf-w2" -> 2)."""
    return int(name.rsplit("-w", 1)[1])


def peak_rss_bytes() -> int:
    """This process' peak RSS so far (Linux reports KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def check_batch(x: Any, batch: int, seq_len: int) -> None:
    if tuple(x.shape) != (batch, seq_len):
        raise ValueError(f"input_ids batch has shape {tuple(x.shape)}, want [{batch}, {seq_len}]")


# --- token contenders, each run in its own process ----------------------------------------


def role_write_mds(args: argparse.Namespace) -> Dict[str, Any]:
    import pyarrow.parquet as pq
    from streaming import MDSWriter

    table = pq.read_table(args.work / "tokens.parquet")
    out = args.work / "tokens.mds"
    shutil.rmtree(out, ignore_errors=True)
    ids = table.column("input_ids").combine_chunks()
    values = ids.values.to_numpy()
    offsets = ids.offsets.to_numpy()
    started = time.perf_counter()
    with MDSWriter(out=str(out), columns={"input_ids": "ndarray:int32"}, compression=None) as w:
        for i in range(len(ids)):
            w.write({"input_ids": values[offsets[i]:offsets[i + 1]]})
    return {"write_s": time.perf_counter() - started, "documents": len(ids)}


def role_write_hf(args: argparse.Namespace) -> Dict[str, Any]:
    import datasets

    datasets.disable_progress_bars()
    out = args.work / "tokens.hf"
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    ds = datasets.Dataset.from_parquet(
        str(args.work / "tokens.parquet"), cache_dir=str(args.work / "hf-cache")
    )
    ds.save_to_disk(str(out))
    return {"write_s": time.perf_counter() - started, "documents": len(ds)}


def role_read_hf(args: argparse.Namespace) -> Dict[str, Any]:
    from itertools import chain

    import datasets
    import torch
    from torch.utils.data import DataLoader

    datasets.disable_progress_bars()
    L, B = args.seq_len, args.batch
    ds = datasets.load_from_disk(str(args.work / "tokens.hf"))

    def group_texts(examples: Dict[str, List[List[int]]]) -> Dict[str, List[List[int]]]:
        # transformers' run_clm.py recipe, each document followed by the eos.
        docs = examples["input_ids"]
        for doc in docs:
            doc.append(EOS_ID)
        concatenated = list(chain(*docs))
        total = (len(concatenated) // L) * L
        return {"input_ids": [concatenated[i:i + L] for i in range(0, total, L)]}

    maps = []
    for _ in range(args.reps):
        started = time.perf_counter()
        packed = ds.map(group_texts, batched=True, load_from_cache_file=False)
        maps.append(time.perf_counter() - started)
    packed = packed.with_format("torch")
    out: Dict[str, Any] = {"map_s": maps, "map_best_s": min(maps), "sequences": len(packed)}
    for name in args.variants:
        workers = workers_of(name)
        gen = torch.Generator().manual_seed(SEED)
        loader = DataLoader(packed, batch_size=B, shuffle=True, drop_last=True,
                            num_workers=workers, generator=gen, persistent_workers=workers > 0)

        def epoch(_: int, loader: Any = loader) -> Tuple[int, float]:
            started = time.perf_counter()
            tokens = 0
            for batch in loader:
                x = batch["input_ids"]
                if tokens == 0:
                    check_batch(x, B, L)
                tokens += x.numel()
            return tokens, time.perf_counter() - started

        out[name] = timed_epochs(epoch, args.reps)
    return out


def role_read_mds(args: argparse.Namespace) -> Dict[str, Any]:
    import numpy as np
    import torch
    from streaming import StreamingDataset
    from streaming.base.util import clean_stale_shared_memory
    from torch.utils.data import DataLoader, IterableDataset

    L, B = args.seq_len, args.batch

    class PackedDocuments(IterableDataset):
        """Documents of a StreamingDataset, each + eos, cut into L-token int64 rows."""

        def __init__(self, docs: StreamingDataset) -> None:
            self.docs = docs

        def __iter__(self) -> Iterator[Any]:
            row = np.empty(L, dtype=np.int64)
            fill = 0
            for sample in self.docs:
                doc = sample["input_ids"]
                start, n = 0, len(doc)
                while start < n:
                    take = min(L - fill, n - start)
                    row[fill:fill + take] = doc[start:start + take]
                    fill += take
                    start += take
                    if fill == L:
                        yield torch.from_numpy(row)
                        row, fill = np.empty(L, dtype=np.int64), 0
                row[fill] = EOS_ID
                fill += 1
                if fill == L:
                    yield torch.from_numpy(row)
                    row, fill = np.empty(L, dtype=np.int64), 0

    out: Dict[str, Any] = {}
    for name in args.variants:
        workers = workers_of(name)
        clean_stale_shared_memory()
        docs = StreamingDataset(local=str(args.work / "tokens.mds"), remote=None, shuffle=True,
                                shuffle_seed=SEED, batch_size=B)
        loader = DataLoader(PackedDocuments(docs), batch_size=B, drop_last=True,
                            num_workers=workers)

        def epoch(_: int, loader: Any = loader) -> Tuple[int, float]:
            started = time.perf_counter()
            tokens = 0
            for x in loader:
                if tokens == 0:
                    check_batch(x, B, L)
                tokens += x.numel()
            return tokens, time.perf_counter() - started

        out[name] = timed_epochs(epoch, args.reps)
    return out


def memcpy_figures(args: argparse.Namespace) -> Dict[str, Any]:
    """One numpy copy of all the corpus' int32 tokens, held contiguous in memory."""
    import numpy as np
    import pyarrow.parquet as pq

    ids = pq.read_table(args.work / "tokens.parquet").column("input_ids").combine_chunks()
    src = np.ascontiguousarray(ids.values.to_numpy())
    dst = np.empty_like(src)
    np.copyto(dst, src)  # the destination's pages faulted in before the clock

    def copy(_: int) -> Tuple[int, float]:
        started = time.perf_counter()
        np.copyto(dst, src)
        return len(src), time.perf_counter() - started

    figures = timed_epochs(copy, max(5, args.reps))
    figures["bytes"] = int(src.nbytes)
    return figures


def role_read_mosaicrs(args: argparse.Namespace) -> Dict[str, Any]:
    """The mosaicrs loader variants named in args.variants, then memcpy when named, in one
    process (memcpy last, so that each loader's own peak RSS is taken before it allocates)."""
    out: Dict[str, Any] = {}
    loaders = [n for n in args.variants if n != "memcpy"]
    if loaders:
        out.update(mosaicrs_token_figures(args, loaders))
    if "memcpy" in args.variants:
        out["memcpy"] = memcpy_figures(args)
    return out


def keep_batch(batch: Any) -> Any:
    """A DataLoader collate_fn that hands the loader's batch on as it is (the default,
    ``default_convert``, copies every batch dict)."""
    return batch


def mosaicrs_token_figures(args: argparse.Namespace, names: List[str]) -> Dict[str, Any]:
    import torch

    L, B = args.seq_len, args.batch
    try:
        import mosaicrs.torch as mt
    except ImportError as exc:
        return {n: {"error": f"unavailable: mosaicrs does not import ({exc})"} for n in names}
    if not hasattr(mt, "TokenLoader"):
        reason = f"unavailable: mosaicrs.torch has no TokenLoader ({mt.__file__})"
        return {n: {"error": reason} for n in names}
    from torch.utils.data import DataLoader

    path = str(args.work / "tokens.mosaicrs")
    same = dict(seq_len=L, batch_size=B, eos_id=EOS_ID, shuffle=True, seed=SEED)
    out: Dict[str, Any] = {}
    for name in names:
        options = {k: getattr(torch, v) if isinstance(v, str) else v
                   for k, v in MOSAICRS_TOKEN_OPTIONS.get(name, {}).items()}
        dtype = options.get("dtype", torch.int64)
        started = time.perf_counter()
        if name.startswith("mosaicrs-dataloader"):
            if not hasattr(mt, "TokenIterableDataset"):
                out[name] = {"error": "unavailable: mosaicrs.torch has no TokenIterableDataset"}
                continue
            source: Any = mt.TokenIterableDataset(path, **same)
            collate = {"collate_fn": keep_batch} if name.endswith("-keep") else {}
            batches: Any = DataLoader(source, batch_size=None, num_workers=0, **collate)
        else:
            source = batches = mt.TokenLoader(path, **options, **same)
        opened = time.perf_counter() - started

        def epoch(e: int, source: Any = source, batches: Any = batches,
                  dtype: torch.dtype = dtype) -> Tuple[int, float]:
            source.set_epoch(e)
            started = time.perf_counter()
            tokens = 0
            for batch in batches:
                x = batch["input_ids"]
                if tokens == 0:
                    check_batch(x, B, L)
                    if x.dtype != dtype:
                        raise ValueError(f"input_ids has dtype {x.dtype}, want {dtype}")
                tokens += x.numel()
            return tokens, time.perf_counter() - started

        first = epoch(100)  # warms the pages and the ring
        figures = timed_epochs(epoch, args.reps)
        figures.update(open_s=opened, warm_epoch_s=first[1], peak_rss_bytes=peak_rss_bytes())
        if not name.startswith("mosaicrs-dataloader"):
            figures.update(total_tokens=source.total_tokens, batches_per_epoch=len(source))
        source.close()
        out[name] = figures
    return out


# --- ragged contenders ---------------------------------------------------------------------


def role_read_torch_ragged(args: argparse.Namespace) -> Dict[str, Any]:
    import numpy as np
    import pyarrow.parquet as pq
    import torch
    from torch.utils.data import DataLoader, Dataset

    table = pq.read_table(args.work / "ragged.parquet")
    dense = np.ascontiguousarray(np.stack([table.column(c).to_numpy() for c in DENSE], axis=1))
    label = table.column("label").to_numpy()
    lists = []
    for name in ID_LISTS:
        col = table.column(name).combine_chunks()
        lists.append((col.values.to_numpy(), col.offsets.to_numpy()))
    del table

    class Rows(Dataset):
        """One row: its dense features, label and id slices (views, no copy)."""

        def __len__(self) -> int:
            return len(label)

        def __getitem__(self, i: int) -> Tuple[Any, int, List[Any]]:
            return dense[i], label[i], [v[o[i]:o[i + 1]] for v, o in lists]

    def collate(rows: List[Tuple[Any, int, List[Any]]]) -> Dict[str, Any]:
        out: Dict[str, Any] = {
            "dense": torch.from_numpy(np.stack([r[0] for r in rows])),
            "label": torch.from_numpy(np.array([r[1] for r in rows], dtype=np.int64)),
        }
        for j, name in enumerate(ID_LISTS):
            parts = [r[2][j] for r in rows]
            offsets = np.zeros(len(parts) + 1, dtype=np.int64)
            np.cumsum([len(p) for p in parts], out=offsets[1:])
            out[name] = (torch.from_numpy(np.concatenate(parts)), torch.from_numpy(offsets))
        return out

    result: Dict[str, Any] = {}
    for name in args.variants:
        if name == "torch-batched":
            result[name] = timed_epochs(batched_epochs(dense, label, lists, args), args.reps)
            continue
        workers = workers_of(name)
        gen = torch.Generator().manual_seed(SEED)
        loader = DataLoader(Rows(), batch_size=args.ragged_batch, shuffle=True, drop_last=True,
                            collate_fn=collate, num_workers=workers, generator=gen,
                            persistent_workers=workers > 0)

        def epoch(_: int, loader: Any = loader) -> Tuple[int, float]:
            started = time.perf_counter()
            samples = 0
            for batch in loader:
                samples += ragged_batch_rows(batch, args.ragged_batch)
            return samples, time.perf_counter() - started

        result[name] = timed_epochs(epoch, args.reps)
    return result


def batched_epochs(dense: Any, label: Any, lists: List[Tuple[Any, Any]],
                   args: argparse.Namespace) -> Callable[[int], Tuple[int, float]]:
    """The strongest Python path: a sampler of whole batches of indices and one vectorized
    numpy gather per batch (dense rows, and the id slices through one index array)."""
    import numpy as np
    import torch
    from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler

    class Batches(Dataset):
        def __len__(self) -> int:
            return len(label)

        def __getitem__(self, idx: List[int]) -> Dict[str, Any]:
            rows = np.asarray(idx, dtype=np.int64)
            out: Dict[str, Any] = {"dense": torch.from_numpy(dense[rows]),
                                   "label": torch.from_numpy(label[rows])}
            for name, (values, offsets) in zip(ID_LISTS, lists, strict=True):
                starts = offsets[rows].astype(np.int64)
                lengths = offsets[rows + 1] - starts
                out_offsets = np.zeros(len(rows) + 1, dtype=np.int64)
                np.cumsum(lengths, out=out_offsets[1:])
                # The source index of every output id: its row's start plus its place in the row.
                take = np.repeat(starts - out_offsets[:-1], lengths)
                take += np.arange(out_offsets[-1], dtype=np.int64)
                out[name] = (torch.from_numpy(values[take]), torch.from_numpy(out_offsets))
            return out

    ds = Batches()
    gen = torch.Generator().manual_seed(SEED)
    sampler = BatchSampler(RandomSampler(ds, generator=gen), args.ragged_batch, drop_last=True)
    loader = DataLoader(ds, sampler=sampler, batch_size=None, num_workers=0)

    def epoch(_: int) -> Tuple[int, float]:
        started = time.perf_counter()
        samples = 0
        for batch in loader:
            samples += ragged_batch_rows(batch, args.ragged_batch)
        return samples, time.perf_counter() - started

    return epoch


def ragged_batch_rows(batch: Dict[str, Any], want: int) -> int:
    """Rows of a ragged batch, after checking that it has the shapes both paths promise."""
    rows = int(batch["dense"].shape[0])
    if tuple(batch["dense"].shape) != (want, len(DENSE)):
        raise ValueError(f"dense batch has shape {tuple(batch['dense'].shape)}")
    for name in ID_LISTS:
        values, offsets = batch[name]
        if tuple(offsets.shape) != (rows + 1,) or int(offsets[-1]) != int(values.shape[0]):
            raise ValueError(f"{name}: offsets {tuple(offsets.shape)} do not cover "
                             f"{tuple(values.shape)} values of {rows} rows")
    return rows


def ragged_api_available() -> bool:
    """Whether the installed mosaicrs has ragged columns in `mosaicrs.torch.Loader`."""
    import inspect

    try:
        import mosaicrs.torch as mt
    except ImportError:
        return False
    return hasattr(mt, "Ragged") and "ragged" in inspect.signature(mt.Loader).parameters


def mosaicrs_ragged_loader(path: str, batch: int) -> Any:
    """`mosaicrs.torch.Loader` with the dense features as one [B, 13] column (written
    packed, see write_data) and the id lists as Ragged(values, offsets)."""
    import mosaicrs.torch as mt

    return mt.Loader(path, batch, columns=["dense", "label", *ID_LISTS],
                     ragged={name: "offsets" for name in ID_LISTS}, seed=SEED)


def mosaicrs_ragged_batch(batch: Dict[str, Any]) -> Dict[str, Any]:
    """The loader's dict batch in the baseline's shape: dense, label, (values, offsets)."""
    out = {"dense": batch["dense"], "label": batch["label"]}
    for name in ID_LISTS:
        out[name] = (batch[name].values, batch[name].offsets)
    return out


def role_read_mosaicrs_ragged(args: argparse.Namespace) -> Dict[str, Any]:
    if not ragged_api_available():
        return {"error": "unavailable: mosaicrs.torch.Loader has no ragged= (or mosaicrs does "
                         "not import)"}
    loader = mosaicrs_ragged_loader(str(args.work / "ragged.mosaicrs"), args.ragged_batch)

    def epoch(e: int) -> Tuple[int, float]:
        loader.set_epoch(e)
        started = time.perf_counter()
        samples = 0
        for batch in loader:
            samples += ragged_batch_rows(mosaicrs_ragged_batch(batch), args.ragged_batch)
        return samples, time.perf_counter() - started

    first = epoch(100)
    figures = timed_epochs(epoch, args.reps)
    figures["warm_epoch_s"] = first[1]
    loader.close()
    return figures


ROLES: Dict[str, Callable[[argparse.Namespace], Dict[str, Any]]] = {
    "write-mds": role_write_mds,
    "write-hf": role_write_hf,
    "read-hf": role_read_hf,
    "read-mds": role_read_mds,
    "read-mosaicrs": role_read_mosaicrs,
    "read-torch-ragged": role_read_torch_ragged,
    "read-mosaicrs-ragged": role_read_mosaicrs_ragged,
}


# --- the orchestrator ------------------------------------------------------------------


class Runner:
    """Starts the roles in their venvs and turns their output into entries."""

    def __init__(self, args: argparse.Namespace) -> None:
        sys.path.insert(0, str(BENCH_DIR))
        import run as suite  # noqa: E402  (bench/run.py: machine_info, run_json, parse_json)
        import venvs  # noqa: E402

        self.suite, self.args = suite, args
        self.pythons: Dict[str, Any] = {"shared": venvs.VenvStatus("shared", Path(sys.executable))}
        wanted = {venv for name, (venv, _) in {**TOKEN_CONTENDERS, **RAGGED_CONTENDERS}.items()
                  if name in args.contenders}
        for name in sorted(wanted - {"shared"}):
            self.pythons[name] = venvs.ensure(name, install=not args.no_install, log=log)
            if self.pythons[name].python is None:
                log(f"skipping the contenders of venv {name}: {self.pythons[name].error}")

    def role(
        self, venv: str, role: str, variants: Tuple[str, ...] = ()
    ) -> Tuple[Optional[dict], str]:
        """Run `role` in `venv`'s interpreter: its JSON (with the tree's peak RSS) or why not."""
        status = self.pythons[venv]
        if status.python is None:
            return None, f"not installed: {status.error}"
        a = self.args
        if a.in_process and venv == "shared":
            log(f"{role} in this process")
            doc = ROLES[role](argparse.Namespace(**{**vars(a), "variants": variants}))
            doc["memory"] = None
            return doc, ""
        cmd = [str(status.python), str(Path(__file__).resolve()), "--role", role,
               f"--work={a.work}", f"--seq-len={a.seq_len}", f"--batch={a.batch}",
               f"--ragged-batch={a.ragged_batch}", f"--reps={a.reps}",
               f"--variants={','.join(variants)}"]
        env = {"HF_HOME": str(a.work / "hf-home"), "HF_DATASETS_OFFLINE": "1",
               "TOKENIZERS_PARALLELISM": "false"}
        if venv != "shared":
            # A mosaicrs wheel on PYTHONPATH is for the shared venv only.
            env["PYTHONPATH"] = ""
        log(f"{role} in venv {venv}")
        doc, err = self.suite.run_json(cmd, timeout=a.timeout, env=env)
        if doc is None:
            return None, err
        return doc, ""


def entry(name: str, table: Dict[str, Tuple[str, str]], **figures: Any) -> Dict[str, Any]:
    venv, label = table[name]
    return {"name": name, "label": label, "venv": venv, **figures}


def failed(name: str, table: Dict[str, Tuple[str, str]], reason: str) -> Dict[str, Any]:
    return entry(name, table, ok=False, error=" ".join(reason.split())[:600])


def corpus_figures(corpus: Any, written: Dict[str, Any]) -> Dict[str, Any]:
    import numpy as np

    lengths = doc_lengths_of(corpus)
    return {"tokens": int(lengths.sum()), "documents": len(lengths),
            "mean_length": float(lengths.mean()), "median_length": float(np.median(lengths)),
            "max_length": int(lengths.max()), "vocab_size": VOCAB_SIZE, "dtype": "int32",
            **{k: v for k, v in written.items() if "tokens" in k or k == "generate_s"}}


def doc_lengths_of(corpus: Any) -> Any:
    import numpy as np

    lengths = corpus.column("input_ids").combine_chunks().value_lengths().to_numpy()
    return lengths.astype(np.int64)


def run_tokens(runner: Runner, args: argparse.Namespace, corpus: Any) -> Dict[str, Any]:
    want = args.contenders
    lengths = doc_lengths_of(corpus)
    T = TOKEN_CONTENDERS
    entries: List[Dict[str, Any]] = []
    expected = packed_expectation(lengths, args.seq_len, args.batch)
    writes: Dict[str, Any] = {}
    # One process per contender; memcpy shares the mosaicrs TokenLoader's.
    for fmt, venv, readers in (("mds", "streaming", ("mds-w0", "mds-w2")),
                               ("hf", "hf", ("hf-w0", "hf-w2"))):
        chosen = [r for r in readers if r in want]
        if not chosen:
            continue
        doc, err = runner.role(venv, f"write-{fmt}")
        writes[fmt] = doc if doc is not None else {"error": err}
        if doc is None:
            why = err if err.startswith("not installed:") else f"write failed: {err}"
            entries += [failed(r, T, why) for r in chosen]
            continue
        for r in chosen:
            doc, err = runner.role(venv, f"read-{fmt}", (r,))
            if doc is None:
                entries.append(failed(r, T, err))
                continue
            figures = doc[r]
            extra: Dict[str, Any] = {}
            if fmt == "hf":
                with_map = figures["count"] / (figures["best_s"] + doc["map_best_s"])
                extra = {"map_s": doc["map_best_s"], "tokens_per_s_with_map": with_map}
            entries.append(entry(r, T, ok=True, tokens=figures["count"],
                                 tokens_per_s=figures["per_s"], epoch_s=figures["epoch_s"],
                                 memory=doc["memory"], **extra))
    groups = [("mosaicrs", "memcpy"), ("mosaicrs-int32",), ("mosaicrs-ids",), ("mosaicrs-full",),
              ("mosaicrs-dataloader", "mosaicrs-dataloader-keep")]
    for group in groups:
        names = tuple(n for n in group if n in want)
        if not names:
            continue
        doc, err = runner.role("shared", "read-mosaicrs", names)
        for name in names:
            if doc is None:
                entries.append(failed(name, T, err))
                continue
            f = doc[name]
            if "error" in f:
                entries.append(failed(name, T, f["error"]))
                continue
            memory = doc["memory"]
            if memory and "peak_rss_bytes" in f and len(names) > 1:
                # Its own peak, taken before memcpy allocated in the same process.
                memory = {**memory, "peak_total_rss_bytes": f["peak_rss_bytes"]}
            extra = {k: f[k] for k in ("open_s", "total_tokens", "batches_per_epoch", "bytes")
                     if k in f}
            entries.append(entry(name, T, ok=True, tokens=f["count"], tokens_per_s=f["per_s"],
                                 epoch_s=f["epoch_s"], memory=memory, **extra))
    rates = {e["name"]: e["tokens_per_s"] for e in entries if e.get("ok")}
    python = [n for n in PYTHON_TOKEN_PATHS if n in rates]
    ratios: Dict[str, Any] = {}
    if "mosaicrs" in rates and python:
        fastest = max(python, key=lambda n: rates[n])
        ratios["over_fastest_python"] = {"against": fastest,
                                         "ratio": rates["mosaicrs"] / rates[fastest],
                                         "target": TARGETS["python"]}
    if "mosaicrs" in rates and "memcpy" in rates:
        ratios["over_memcpy"] = {"ratio": rates["mosaicrs"] / rates["memcpy"],
                                 "target": TARGETS["memcpy"]}
    # Every output configuration against both targets: the default's outputs may miss
    # what a leaner set meets.
    ratios["variants"] = {
        name: {**({"over_fastest_python": rates[name] / max(rates[n] for n in python)}
                  if python else {}),
               **({"over_memcpy": rates[name] / rates["memcpy"]} if "memcpy" in rates else {})}
        for name in MOSAICRS_TOKEN_VARIANTS if name in rates
    }
    return {"seq_len": args.seq_len, "batch_size": args.batch, "eos_id": EOS_ID,
            "expected": expected, "writes": writes, "contenders": entries, "ratios": ratios}


def run_ragged(runner: Runner, args: argparse.Namespace, table: Any) -> Dict[str, Any]:
    want = args.contenders
    R = RAGGED_CONTENDERS
    entries: List[Dict[str, Any]] = []
    for n in (*PYTHON_RAGGED_PATHS, "torch-batched"):
        if n not in want:
            continue
        doc, err = runner.role("shared", "read-torch-ragged", (n,))
        if doc is None:
            entries.append(failed(n, R, err))
        else:
            f = doc[n]
            entries.append(entry(n, R, ok=True, samples=f["count"], samples_per_s=f["per_s"],
                                 epoch_s=f["epoch_s"], memory=doc["memory"]))
    if "mosaicrs-ragged" in want:
        doc, err = runner.role("shared", "read-mosaicrs-ragged")
        if doc is None or "error" in doc:
            entries.append(failed("mosaicrs-ragged", R, err if doc is None else doc["error"]))
        else:
            entries.append(entry("mosaicrs-ragged", R, ok=True, samples=doc["count"],
                                 samples_per_s=doc["per_s"], epoch_s=doc["epoch_s"],
                                 memory=doc["memory"]))
    rates = {e["name"]: e["samples_per_s"] for e in entries if e.get("ok")}
    python = [n for n in PYTHON_RAGGED_PATHS if n in rates]
    ratios: Dict[str, Any] = {}
    if "mosaicrs-ragged" in rates and python:
        fastest = max(python, key=lambda n: rates[n])
        ratios["over_fastest_python"] = {"against": fastest,
                                         "ratio": rates["mosaicrs-ragged"] / rates[fastest],
                                         "target": TARGETS["ragged"]}
    if "mosaicrs-ragged" in rates and "torch-batched" in rates:
        ratios["over_batched"] = {"against": "torch-batched",
                                  "ratio": rates["mosaicrs-ragged"] / rates["torch-batched"]}
    lengths = {name: table.column(name).combine_chunks().value_lengths() for name in ID_LISTS}
    return {"rows": table.num_rows, "batch_size": args.ragged_batch,
            "expected_samples": (table.num_rows // args.ragged_batch) * args.ragged_batch,
            "mean_ids": {n: float(v.to_numpy().mean()) for n, v in lengths.items()},
            "contenders": entries, "ratios": ratios}


def write_data(args: argparse.Namespace) -> Tuple[Any, Any, Dict[str, Any]]:
    """Generate the parts' datasets (None for a part not run), write them as Parquet and
    (when it imports) as mosaicrs datasets."""
    import pyarrow.parquet as pq

    args.work.mkdir(parents=True, exist_ok=True)
    info: Dict[str, Any] = {}
    started = time.perf_counter()
    corpus = token_corpus(args.tokens, args.seed) if "tokens" in args.parts else None
    table = ragged_table(args.ragged_rows, args.seed) if "ragged" in args.parts else None
    info["generate_s"] = time.perf_counter() - started
    # The dense features packed row-major into one [B, 13] column, as a user would write them.
    todo = [(name, data, pack) for name, data, pack in
            (("tokens", corpus, None), ("ragged", table, {"dense": DENSE})) if data is not None]
    for name, data, _ in todo:
        pq.write_table(data, args.work / f"{name}.parquet", compression="none")
    try:
        import mosaicrs
    except ImportError as exc:
        info["mosaicrs_write"] = f"unavailable: mosaicrs does not import ({exc})"
        return corpus, table, info
    for name, data, pack in todo:
        started = time.perf_counter()
        mosaicrs.write(data, str(args.work / f"{name}.mosaicrs"), mode="overwrite", pack=pack)
        info[f"mosaicrs_write_{name}_s"] = time.perf_counter() - started
    return corpus, table, info


def fmt_rate(v: Optional[float]) -> str:
    if v is None:
        return "—"
    return f"{v / 1e6:,.1f} M" if v >= 1e6 else f"{v / 1e3:,.1f} k" if v >= 1e3 else f"{v:,.1f}"


def peak_rss(entry: Dict[str, Any]) -> str:
    """The contender process tree's peak RSS (none when it ran in the orchestrator)."""
    if not entry.get("memory"):
        return "—"
    return f"{entry['memory']['peak_total_rss_bytes'] / 2**20:,.0f} MiB"


def run_line(meta: Dict[str, Any]) -> str:
    mach = meta["machine"]
    return (
        f"Run {meta['date_utc']} at commit `{meta['git']}`"
        f"{' (QUICK RUN: small data)' if meta['quick'] else ''}: `{meta['command']}`, "
        f"{meta['wall_s']:.0f} s in all. Machine: {mach['cpu']}, {mach['cores']} cores, "
        f"{mach['memory_gib']} GiB, no GPU; load average at start "
        f"{', '.join(f'{x:.1f}' for x in mach['load_average_start'])}, at end "
        f"{', '.join(f'{x:.1f}' for x in mach['load_average_end'])}."
    )


def render(doc: Dict[str, Any]) -> str:
    """The markdown tables of a results document."""
    lines: List[str] = []
    if "tokens" in doc:
        t, c = doc["tokens"], doc["tokens"]["corpus"]
        meta = t["meta"]
        lines += [run_line(meta), ""]
        mosaicrs = next((e for e in t["contenders"] if e["name"] == "mosaicrs" and e.get("ok")),
                        None)
        lines += [
            f"#### Token packing: {c['tokens']:,} tokens in {c['documents']:,} documents "
            f"(mean {c['mean_length']:.0f}, median {c['median_length']:.0f}, max "
            f"{c['max_length']:,}), [B={t['batch_size']}, L={t['seq_len']}] int64 input_ids, "
            f"best of {meta['reps']} epochs",
            "",
            "| contender | tokens/s | tokens per epoch | mosaicrs ÷ it | with map: tokens/s "
            "| peak RSS |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for e in t["contenders"]:
            if not e.get("ok"):
                lines.append(f"| {e['label']} | did not run | | | | |")
                continue
            ratio = f"{mosaicrs['tokens_per_s'] / e['tokens_per_s']:.2f}×" if mosaicrs else "—"
            lines.append(
                f"| {e['label']} | {fmt_rate(e['tokens_per_s'])} | {e['tokens']:,} | {ratio} | "
                f"{fmt_rate(e.get('tokens_per_s_with_map'))} | {peak_rss(e)} |"
            )
        lines += [""] + [f"- **{e['name']}** did not run: {e['error']}"
                         for e in t["contenders"] if not e.get("ok")]
        lines += _targets(t["ratios"], "mosaicrs")
        for name, r in t["ratios"].get("variants", {}).items():
            lines.append(f"- {TOKEN_CONTENDERS[name][1]}: "
                         + ", ".join(f"{r[k]:.2f}× {what} (target ≥ {TARGETS[key]:g}×)"
                                     for k, what, key in (("over_fastest_python",
                                                           "the fastest Python path", "python"),
                                                          ("over_memcpy", "memcpy", "memcpy"))
                                     if k in r))
    if "ragged" in doc:
        r = doc["ragged"]
        meta = r["meta"]
        mine = next((e for e in r["contenders"]
                     if e["name"] == "mosaicrs-ragged" and e.get("ok")), None)
        lines += [
            "",
            run_line(meta),
            "",
            f"#### Ragged id lists: {r['rows']:,} rows of {len(DENSE)} float32 + label + "
            f"{len(ID_LISTS)} id lists (mean "
            f"{', '.join(f'{v:.1f}' for v in r['mean_ids'].values())} ids), "
            f"B={r['batch_size']}, best of {meta['reps']} epochs",
            "",
            "| contender | samples/s | mosaicrs ÷ it | peak RSS |",
            "|---|---:|---:|---:|",
        ]
        for e in r["contenders"]:
            if not e.get("ok"):
                lines.append(f"| {e['label']} | did not run | | |")
                continue
            ratio = f"{mine['samples_per_s'] / e['samples_per_s']:.2f}×" if mine else "—"
            lines.append(f"| {e['label']} | {fmt_rate(e['samples_per_s'])} | {ratio} | "
                         f"{peak_rss(e)} |")
        lines += [""] + [f"- **{e['name']}** did not run: {e['error']}"
                         for e in r["contenders"] if not e.get("ok")]
        lines += _targets(r["ratios"], "mosaicrs-ragged")
    return "\n".join(lines).rstrip() + "\n"


def _targets(ratios: Dict[str, Any], ours: str) -> List[str]:
    out = []
    for key, what in (("over_fastest_python", "the fastest Python path"),
                      ("over_memcpy", "memcpy")):
        if key in ratios:
            r = ratios[key]
            against = f" ({r['against']})" if "against" in r else ""
            verdict = "met" if r["ratio"] >= r["target"] else "MISSED"
            out.append(f"- {ours} ÷ {what}{against}: {r['ratio']:.2f}× "
                       f"(target ≥ {r['target']:g}×, {verdict})")
    if "over_batched" in ratios:
        out.append(f"- {ours} ÷ the batch-sampler numpy gather: "
                   f"{ratios['over_batched']['ratio']:.2f}× (no target)")
    return out


def parse_args(argv: List[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a few M tokens, one rep, seconds")
    ap.add_argument("--tokens", type=int, default=None, help="corpus size (default 30M; quick 2M)")
    ap.add_argument("--ragged-rows", type=int, default=None, help="default 500k; quick 10k")
    ap.add_argument("--seq-len", type=int, default=2048)
    ap.add_argument("--batch", type=int, default=8, help="sequences per token batch")
    ap.add_argument("--ragged-batch", type=int, default=1024, help="rows per ragged batch")
    ap.add_argument("--reps", type=int, default=None, help="timed epochs (default 3; quick 1)")
    ap.add_argument("--seed", type=int, default=SEED)
    every = [*TOKEN_CONTENDERS, *RAGGED_CONTENDERS]
    ap.add_argument("--contenders", default=",".join(every), help="comma-separated subset")
    ap.add_argument("--parts", default="tokens,ragged", help="tokens, ragged or both")
    ap.add_argument("--work", type=Path, default=None, help="data folder (bench/results/tmp/...)")
    ap.add_argument("--json", type=Path, default=None, help="results file")
    ap.add_argument("--no-install", action="store_true", help="never create contender venvs")
    ap.add_argument("--note", default=None, help="a remark kept in the results (e.g. the build)")
    ap.add_argument("--keep-data", action="store_true", help="keep the data folder at the end")
    ap.add_argument("--in-process", action="store_true",
                    help="run the .venv contenders in this process (no RSS figures; for tests)")
    ap.add_argument("--role", choices=sorted(ROLES), help=argparse.SUPPRESS)
    ap.add_argument("--variants", default="", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.contenders = set(args.contenders.split(","))
    unknown = args.contenders - set(every)
    if unknown:
        ap.error(f"unknown contenders {sorted(unknown)}; known: {every}")
    args.parts = set(args.parts.split(","))
    if args.parts - {"tokens", "ragged"}:
        ap.error(f"unknown parts {sorted(args.parts - {'tokens', 'ragged'})}")
    args.variants = tuple(v for v in args.variants.split(",") if v)
    args.tokens = args.tokens or (2_000_000 if args.quick else 30_000_000)
    args.ragged_rows = args.ragged_rows or (10_000 if args.quick else 500_000)
    args.reps = args.reps or (1 if args.quick else 3)
    tmp = REPO / "bench" / "results" / "tmp"
    args.work = args.work or tmp / ("tokens-quick-data" if args.quick else "tokens-data")
    args.json = args.json or (tmp / "tokens-quick.json" if args.quick
                              else REPO / "bench" / "results" / "tokens.json")
    args.timeout = 300 if args.quick else 1800
    return args


SUITE_RESULTS = REPO / "bench" / "results" / "results.json"


def record_in_suite(doc: Dict[str, Any]) -> None:
    """Copies a full run's parts into the suite's results file (keys `tokens` and
    `ragged`), beside the comparison suite's own figures, so that one file holds
    every figure BENCHMARKS.md quotes."""
    try:
        suite = json.loads(SUITE_RESULTS.read_text())
    except (OSError, ValueError):
        suite = {}
    suite.update({part: doc[part] for part in ("tokens", "ragged") if part in doc})
    SUITE_RESULTS.write_text(json.dumps(suite, indent=1) + "\n")
    log(f"tokens and ragged figures also in {SUITE_RESULTS}")


def run_meta(args: argparse.Namespace, argv: List[str], runner: Runner) -> Dict[str, Any]:
    """What a part's figures were taken with: command, commit, machine, the mosaicrs used."""
    try:
        import mosaicrs

        module = str(Path(mosaicrs.__file__).parent)
    except ImportError as exc:
        module = f"does not import: {exc}"
    return {
        "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(shlex.quote(a) for a in ["bench/tokens_bench.py", *argv]),
        "git": runner.suite.git_rev(),
        "mosaicrs_module": module,
        "quick": args.quick,
        "machine": runner.suite.machine_info(),
        "reps": args.reps,
        "seed": args.seed,
        "note": args.note,
        "venvs": {n: s.as_json() for n, s in runner.pythons.items() if n != "shared"},
    }


def main(argv: List[str]) -> int:
    args = parse_args(argv)
    if args.role:
        print(json.dumps(ROLES[args.role](args)))
        return 0
    started = time.monotonic()
    runner = Runner(args)
    meta = run_meta(args, argv, runner)
    doc: Dict[str, Any] = {}
    if args.json.is_file():
        # A run of one part keeps the other part's figures (each carries its own meta).
        try:
            old = json.loads(args.json.read_text())
        except ValueError:
            old = {}
        doc.update({p: old[p] for p in ("tokens", "ragged") if p in old and p not in args.parts})
    corpus, table, written = write_data(args)
    if corpus is not None:
        doc["tokens"] = {"meta": meta, "corpus": corpus_figures(corpus, written),
                         **run_tokens(runner, args, corpus)}
    if table is not None:
        doc["ragged"] = {"meta": meta, "written": written, **run_ragged(runner, args, table)}
    meta["machine"]["load_average_end"] = os.getloadavg()
    meta["wall_s"] = round(time.monotonic() - started, 1)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=1) + "\n")
    log(f"results in {args.json}")
    if not args.quick:
        record_in_suite(doc)
    if not args.keep_data:
        shutil.rmtree(args.work, ignore_errors=True)
    print(render(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
