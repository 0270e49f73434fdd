"""One rank of the torchrun test: gloo on CPU; each rank writes the dataset
rows it saw per step, and checks that all ranks ran the same number of steps
with an all_reduce (which would hang if a rank had fewer)."""

import json
import os
import sys

import torch
import torch.distributed as dist

import mosaicrs.torch as mt


def main(path, out):
    dist.init_process_group("gloo")
    loader = mt.Loader(path, 16, seed=11)  # rank and world size from torch.distributed
    steps = 0
    rows = []
    for batch in loader:
        rows.append(batch["id"].tolist())
        t = torch.ones(1)
        dist.all_reduce(t)  # a collective per step, as in DDP
        steps += 1
    total = torch.tensor([steps])
    dist.all_reduce(total, op=dist.ReduceOp.MAX)
    rank = dist.get_rank()
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump({"rank": rank, "world": dist.get_world_size(), "rank_attr": loader.rank,
                   "steps": steps, "max_steps": int(total), "len": len(loader), "rows": rows,
                   "order": loader.order(0) if rank == 0 else None}, f)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
