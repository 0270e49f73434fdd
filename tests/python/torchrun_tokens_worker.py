"""One rank of the TokenLoader torchrun test: gloo on CPU; continues the
saved state of a run on another world size, writes the rows it got per
step, and checks with an all_reduce that every rank ran the same number of
steps (a rank with fewer would hang the collective)."""

import json
import os
import sys

import torch
import torch.distributed as dist

import mosaicrs.torch as mt


def main(path, out, state_file):
    dist.init_process_group("gloo")
    # Rank and world size from torch.distributed.
    loader = mt.TokenLoader(path, seq_len=16, batch_size=2, eos_id=0, seed=7, drop_last=False,
                            attention_mask=True)
    with open(state_file) as f:
        loader.load_state_dict(json.load(f))
    ids, positions, lengths = [], [], []
    for batch in loader:
        ids.append(batch["input_ids"].tolist())
        positions.append(batch["position_ids"].tolist())
        lengths.append(batch["attention_mask"].sum(1).tolist())
        t = torch.ones(1)
        dist.all_reduce(t)  # a collective per step, as in DDP
    steps = torch.tensor([len(ids)])
    dist.all_reduce(steps, op=dist.ReduceOp.MAX)
    rank = dist.get_rank()
    with open(os.path.join(out, f"tokens{rank}.json"), "w") as f:
        json.dump({"rank": loader.rank, "world": loader.world_size, "steps": len(ids),
                   "max_steps": int(steps), "ids": ids, "positions": positions,
                   "lengths": lengths}, f)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(*sys.argv[1:4])
