#!/usr/bin/env python3
"""Language-model pretraining from a Spark-tokenized corpus: PySpark reads text
files, tokenizes each line in a pandas UDF, writes the token ids as a mosaicrs
dataset, and a small causal transformer trains on packed sequences from
mosaicrs.torch.TokenLoader.

    python examples/python/pretrain_tokens.py --out tokens.mosaicrs \
        --jar build/libs/mosaicrs-spark-4_2.13.jar [--text DIR] [--steps 300]

Without ``--text`` a small corpus is generated in a temporary folder. With
``--jar`` the JVM connector writes (``df.write.format("mosaicrs")``); without
it, the jar-free Python data source does (``format("mosaicrs_py")``). Trains
on CUDA when present, else CPU, and prints the loss as it falls.

The tokenizer is byte-level (no model download): token ids 0..255 are the
UTF-8 bytes, 256 starts a document and 257 ends it (``VOCAB = 258``). A real
tokenizer (Hugging Face ``tokenizers``, SentencePiece) drops into the same
pandas UDF.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F_nn

import mosaicrs.torch

BOS, EOS = 256, 257
VOCAB = 258


# -- the tokenizer -----------------------------------------------------------------
def encode(text: str) -> np.ndarray:
    """BOS then the UTF-8 bytes of ``text``, as int32 token ids. The loader
    appends EOS after each document (``eos_id=EOS``)."""
    body = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    out = np.empty(body.size + 1, dtype=np.int32)
    out[0] = BOS
    out[1:] = body
    return out


def decode(ids: List[int]) -> str:
    return bytes(i for i in ids if i < 256).decode("utf-8", errors="replace")


def tokenize_udf() -> Any:
    """The pandas UDF that Spark runs on its Python workers: a Series of
    strings in, a Series of int32 arrays (``array<int>``) out."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    @F.pandas_udf(T.ArrayType(T.IntegerType()))
    def tokenize(texts: pd.Series) -> pd.Series:
        return texts.map(encode)

    return tokenize


# -- a corpus to learn from ------------------------------------------------------
def make_corpus(folder: Path, files: int = 6, lines: int = 400, seed: int = 0) -> Path:
    """Text files of made-up English: sentences from a small grammar, one
    paragraph (a document) per line, so that a small model finds structure."""
    rng = random.Random(seed)
    subjects = ["the cat", "a dog", "the old sailor", "my sister", "the spark job",
                "a small model", "the teacher", "every student", "the river", "our team"]
    verbs = ["sees", "writes", "reads", "trains", "likes", "finds", "follows", "counts"]
    objects = ["the moon", "a long letter", "three apples", "the tokens", "a red boat",
               "the old map", "every line", "the numbers", "a quiet song"]
    tails = ["", " at night", " in the morning", " by the sea", " with great care", " again"]
    numbers = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    folder.mkdir(parents=True, exist_ok=True)
    for f in range(files):
        paragraphs = []
        for _ in range(lines):
            sentences = []
            for _ in range(rng.randint(1, 6)):
                if rng.random() < 0.15:
                    n = rng.randint(3, 9)
                    sentences.append("count to " + numbers[n - 1] + ": " + " ".join(numbers[:n]) + ".")
                else:
                    sentences.append(f"{rng.choice(subjects)} {rng.choice(verbs)} "
                                     f"{rng.choice(objects)}{rng.choice(tails)}.")
            paragraphs.append(" ".join(s[0].upper() + s[1:] for s in sentences))
        (folder / f"part-{f:03d}.txt").write_text("\n".join(paragraphs) + "\n", encoding="utf-8")
    return folder


# -- Spark: text -> token ids -> mosaicrs -----------------------------------------
def write_with_spark(text: str, out: str, jar: Optional[str], spark: Any = None) -> int:
    """Tokenizes every non-blank line of the text files under ``text`` and
    writes them as ``input_ids`` (``array<int>``); returns the documents written."""
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    # The UDF runs in Python workers: this interpreter (its numpy, pandas).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    own = spark is None
    if own:
        builder = SparkSession.builder.master("local[2]").appName("mosaicrs-pretrain-tokens") \
            .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false") \
            .config("spark.log.level", "WARN")
        if jar:
            builder = builder.config("spark.jars", jar)
        spark = builder.getOrCreate()
    try:
        docs = spark.read.text(text).where(F.trim("value") != "")
        tokens = docs.select(tokenize_udf()("value").alias("input_ids"))
        if jar:
            tokens.write.format("mosaicrs").mode("overwrite").save(out)
        else:
            from mosaicrs.spark import FORMAT, register

            register(spark)
            tokens.write.format(FORMAT).mode("overwrite").save(out)
    finally:
        if own:
            spark.stop()
    return len(mosaicrs.Dataset(out))


# -- the model -------------------------------------------------------------------
def document_causal_mask(position_ids: torch.Tensor) -> torch.Tensor:
    """``[B, L, L]`` boolean attention mask, True where attention is NOT
    allowed: token i sees token j only if j <= i and both are in the same
    segment of its row.

    TokenLoader packs several documents into one row, so a plain causal mask
    would let a document attend to the unrelated documents before it in the
    row: what the model learns would then depend on how the stream happened
    to be cut, and every document would see a different, random prefix. With
    a block-diagonal causal mask each document is trained exactly as if it
    were alone in its row, at no cost in padding. The segments come from
    ``position_ids``, which restart at 0 at each document start and at each
    row start (a document cut across rows continues as a new segment), so a
    running count of the zeros numbers them. Attention kernels for variable
    lengths (flash-attention's ``flash_attn_varlen_func``, PyTorch's nested
    jagged tensors) take the same boundaries as ``cu_seqlens`` / ``max_seqlen``
    instead of a dense mask.
    """
    segment = torch.cumsum((position_ids == 0).to(torch.int32), dim=1)  # [B, L]
    same = segment.unsqueeze(2) == segment.unsqueeze(1)                 # [B, L, L]
    length = position_ids.shape[1]
    causal = torch.ones(length, length, dtype=torch.bool, device=position_ids.device).tril()
    return ~(same & causal)


class CausalLM(nn.Module):
    """Token and position embeddings, a pre-norm ``nn.TransformerEncoder``
    run causally, and a linear head over the vocabulary."""

    def __init__(self, vocab: int = VOCAB, d_model: int = 128, heads: int = 4, layers: int = 2,
                 max_len: int = 128) -> None:
        super().__init__()
        self.heads = heads
        self.tokens = nn.Embedding(vocab, d_model)
        self.positions = nn.Embedding(max_len, d_model)
        layer = nn.TransformerEncoderLayer(d_model, heads, 4 * d_model, dropout=0.0,
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab)

    def forward(self, input_ids: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
        x = self.tokens(input_ids) + self.positions(position_ids)
        # A 3-d mask is per (batch, head): [B * heads, L, L].
        mask = document_causal_mask(position_ids).repeat_interleave(self.heads, dim=0)
        return self.head(self.norm(self.encoder(x, mask=mask)))


def causal_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Next-token cross entropy: position t predicts ``labels[t + 1]``. The
    loader's labels are -100 at each segment's first token (and at padding),
    so no token is predicted from another document."""
    return F_nn.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                              labels[:, 1:].reshape(-1), ignore_index=-100)


@torch.no_grad()
def sample(model: CausalLM, prompt: str, tokens: int, device: str) -> str:
    """Greedy continuation of ``prompt`` (one document, so positions 0..n)."""
    model.eval()
    ids = encode(prompt).astype(np.int64).tolist()
    max_len = model.positions.num_embeddings
    for _ in range(tokens):
        window = ids[-max_len:]
        x = torch.tensor([window], device=device)
        pos = torch.arange(len(window), device=device).unsqueeze(0)
        nxt = int(model(x, pos)[0, -1].argmax())
        if nxt == EOS:
            break
        ids.append(nxt)
    model.train()
    return decode(ids)


def train(path: str, steps: int = 200, seq_len: int = 128, batch_size: int = 8,
          d_model: int = 128, layers: int = 2, lr: float = 3e-3, seed: int = 0,
          device: Optional[str] = None, log_every: int = 25, quiet: bool = False) -> Dict[str, Any]:
    torch.manual_seed(seed)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    # The line that replaces a tokenize-concatenate-chunk Dataset and its DataLoader:
    loader = mosaicrs.torch.TokenLoader(path, seq_len=seq_len, batch_size=batch_size,
                                        eos_id=EOS, vocab_size=VOCAB, labels=True,
                                        shuffle=True, seed=seed, device=device)
    if len(loader) == 0:
        raise SystemExit(f"{path} holds fewer tokens than one batch of {batch_size}x{seq_len}")
    model = CausalLM(VOCAB, d_model, heads=4, layers=layers, max_len=seq_len).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 20) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    losses: List[float] = []
    step, epoch, tokens = 0, 0, 0
    start = time.perf_counter()
    while step < steps:
        loader.set_epoch(epoch)
        for batch in loader:
            logits = model(batch["input_ids"], batch["position_ids"])
            loss = causal_loss(logits, batch["labels"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            schedule.step()
            losses.append(loss.item())
            tokens += batch["input_ids"].numel()
            step += 1
            if not quiet and (step % log_every == 0 or step == 1):
                window = losses[-log_every:]
                print(f"step {step:4d}  epoch {epoch}  loss {sum(window) / len(window):.3f}  "
                      f"({time.perf_counter() - start:.0f}s)", flush=True)
            if step == steps:
                break
        epoch += 1
    seconds = time.perf_counter() - start
    tail = losses[-log_every:]
    result = {"device": device, "steps": step, "epochs_started": epoch, "tokens": tokens,
              "seconds": seconds, "first_loss": losses[0],
              "last_loss": sum(tail) / len(tail), "losses": losses,
              "documents": len(loader.dataset), "total_tokens": loader.total_tokens}
    result["sample"] = sample(model, "The cat", 60, device)
    loader.close()
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--text", help="a folder (or file) of text, one document per line "
                                  "(default: a generated corpus)")
    p.add_argument("--out", required=True, help="where the token dataset goes")
    p.add_argument("--jar", help="the connector jar (else the jar-free mosaicrs_py writer)")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device")
    p.add_argument("--torch-threads", type=int, help="torch intra-op threads (default torch's)")
    args = p.parse_args()
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    with tempfile.TemporaryDirectory(prefix="mosaicrs-corpus-") as tmp:
        text = args.text or str(make_corpus(Path(tmp) / "text"))
        started = time.perf_counter()
        documents = write_with_spark(text, args.out, args.jar)
        print(f"spark wrote {documents} tokenized documents to {args.out} "
              f"in {time.perf_counter() - started:.1f}s", flush=True)
    r = train(args.out, steps=args.steps, seq_len=args.seq_len, batch_size=args.batch_size,
              device=args.device)
    print(f"device={r['device']} steps={r['steps']} tokens={r['tokens']} "
          f"corpus_tokens={r['total_tokens']} train_s={r['seconds']:.1f} "
          f"tokens_per_s={r['tokens'] / r['seconds']:.0f}")
    print(f"loss fell from {r['first_loss']:.3f} (step 1) to {r['last_loss']:.3f} (last steps) "
          f"(uniform over {VOCAB} tokens: {math.log(VOCAB):.3f})")
    print(f"sample: {r['sample']!r}")


if __name__ == "__main__":
    main()
