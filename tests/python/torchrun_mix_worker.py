"""One rank of the mix torchrun test: gloo on CPU; continues a one-rank
run's saved states of a sample mix (Loader) and a token mix (TokenLoader) on
this world size, writes what it got per step, and checks with an all_reduce
that every rank ran the same number of steps."""

import json
import os
import sys

import torch
import torch.distributed as dist

import mosaicrs
import mosaicrs.torch as mt


def streams(paths, weights):
    return [mosaicrs.Stream(p, weight=w) for p, w in zip(paths, weights)]


def steps_equal(n):
    """The most steps any rank ran (a rank with fewer would hang DDP)."""
    t = torch.tensor([n])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t)


def main(spec_file, out):
    dist.init_process_group("gloo")
    with open(spec_file) as f:
        spec = json.load(f)
    # Rank and world size from torch.distributed.
    samples = mt.Loader(streams=streams(spec["samples"], spec["weights"]), batch_size=4,
                        seed=5, stream_index=True)
    samples.load_state_dict(spec["sample_state"])
    ids, sources = [], []
    for batch in samples:
        ids.append(batch["id"].tolist())
        sources.append(batch["stream"].tolist())
        dist.all_reduce(torch.ones(1))  # a collective per step, as in DDP
    tokens = mt.TokenLoader(streams=streams(spec["tokens"], spec["weights"]), seq_len=16,
                            batch_size=2, eos_id=0, seed=7, drop_last=False,
                            attention_mask=True)
    tokens.load_state_dict(spec["token_state"])
    rows = []
    for batch in tokens:
        rows.append([batch["input_ids"].tolist(), batch["attention_mask"].sum(1).tolist()])
        dist.all_reduce(torch.ones(1))
    rank = dist.get_rank()
    with open(os.path.join(out, f"mix{rank}.json"), "w") as f:
        json.dump({"rank": samples.rank, "world": samples.world_size, "ids": ids,
                   "sources": sources, "max_sample_steps": steps_equal(len(ids)),
                   "rows": rows, "max_token_steps": steps_equal(len(rows))}, f)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
