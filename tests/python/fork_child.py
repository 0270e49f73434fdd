"""Run by test_fork.py in a fresh interpreter (so a hang is a timeout, not a
stuck pytest): fork and DataLoader worker processes around a live loader."""

import multiprocessing as mp
import sys

import torch

import mosaicrs.torch as mt


def use_inherited(loader, q):
    try:
        for _ in loader:
            pass
        q.put("iterated")
    except RuntimeError as e:
        q.put(f"RuntimeError: {e}")


def fresh_in_child(path, q):
    loader = mt.Loader(path, 10, seed=1)
    q.put(sum(len(b["id"]) for b in loader))


def main(path):
    loader = mt.Loader(path, 10, seed=1, num_threads=2)
    it = iter(loader)
    next(it)  # threads running, mid-epoch
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=use_inherited, args=(loader, q))
    p.start()
    print("inherited:", q.get(timeout=60))
    p.join(60)
    print("inherited exit:", p.exitcode)
    p = ctx.Process(target=fresh_in_child, args=(path, q))
    p.start()
    print("fresh:", q.get(timeout=60))
    p.join(60)
    print("fresh exit:", p.exitcode)
    # The parent's loader still works.
    print("parent rest:", 1 + sum(1 for _ in it))

    ds = mt.IterableDataset(path, 10, seed=1)
    for method in ("fork", "spawn"):
        dl = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2,
                                         multiprocessing_context=method)
        try:
            for _ in dl:
                pass
            print(f"workers-{method}: iterated")
        except RuntimeError as e:
            print(f"workers-{method}: RuntimeError: " + str(e).replace("\n", " "))
    print("done")


if __name__ == "__main__":
    main(sys.argv[1])
