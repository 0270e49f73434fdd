"""Spark's TorchDistributor (local mode, CPU, 2 processes) trains a model with
DistributedDataParallel on packed token batches from a dataset that the same
Spark session wrote: each process reads its own part of every global step
(TokenLoader takes its rank from torch.distributed), the parts are disjoint
and together they are exactly the one-process stream."""

import json
import sys
from typing import List

import pytest

mosaicrs = pytest.importorskip("mosaicrs", reason="run `make python` to install the wheel")
torch = pytest.importorskip("torch")
import mosaicrs.torch as mt  # noqa: E402

EOS = 1
SEQ_LEN = 16
BATCH = 2  # per process
WORLD = 2


def documents() -> List[List[int]]:
    """Documents of 1 to 30 tokens whose first two tokens name them."""
    return [[2 + i // 62, 2 + i % 62, *[(i * 7 + k) % 60 + 2 for k in range(i % 29)]]
            for i in range(160)]


def train(path: str, out: str) -> int:
    """The training function each process runs (shipped by value to torchrun)."""
    import json as json_
    import os

    import torch as torch_
    import torch.distributed as dist

    import mosaicrs.torch as mt_

    dist.init_process_group("gloo")
    rank = dist.get_rank()
    torch_.manual_seed(0)
    model = torch_.nn.parallel.DistributedDataParallel(
        torch_.nn.Sequential(torch_.nn.Embedding(64, 8), torch_.nn.Linear(8, 64)))
    opt = torch_.optim.SGD(model.parameters(), lr=0.1)
    loader = mt_.TokenLoader(path, seq_len=16, batch_size=2, eos_id=1, labels=True, seed=4)
    seen = []
    for batch in loader:
        logits = model(batch["input_ids"])
        loss = torch_.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, 64), batch["labels"][:, 1:].reshape(-1), ignore_index=-100)
        opt.zero_grad()
        loss.backward()
        opt.step()
        seen.append(batch["input_ids"].tolist())
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json_.dump({"rank": loader.rank, "world": loader.world_size, "steps": seen,
                    "loss": loss.item()}, f)
    dist.destroy_process_group()
    return len(seen)


def test_torch_distributor_trains_on_what_the_session_wrote(spark, tmp_path):
    from pyspark import cloudpickle
    from pyspark.ml.torch.distributor import TorchDistributor

    # torchrun's processes cannot import this test module: send `train` by value.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])

    rows = [(i, doc) for i, doc in enumerate(documents())]
    path = tmp_path / "tokens"
    spark.createDataFrame(rows, "id long, input_ids array<int>").repartition(3) \
        .write.format("mosaicrs").save(str(path))

    out = tmp_path / "seen"
    out.mkdir()
    steps = TorchDistributor(num_processes=WORLD, local_mode=True, use_gpu=False) \
        .run(train, str(path), str(out))

    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in range(WORLD)]
    assert [(r["rank"], r["world"]) for r in ranks] == [(0, WORLD), (1, WORLD)]
    assert len(ranks[0]["steps"]) == len(ranks[1]["steps"]) == steps > 0
    # Global step s is rank 0's B sequences, then rank 1's: the one-process
    # stream with batch B * W.
    one = mt.TokenLoader(path, seq_len=SEQ_LEN, batch_size=BATCH * WORLD, eos_id=EOS, seed=4,
                         rank=0, world_size=1)
    expected = [b["input_ids"].tolist() for b in one]
    assert len(expected) == steps
    for s in range(steps):
        assert ranks[0]["steps"][s] + ranks[1]["steps"][s] == expected[s], f"step {s}"

    # And that stream is every document once, each followed by EOS.
    stream = [t for step in expected for row in step for t in row]
    assert len(stream) + one.dropped_tokens == sum(len(d) + 1 for d in documents())
    pieces = " ".join(map(str, stream)).split(f" {EOS} ")
    complete = [list(map(int, p.split())) for p in pieces[:-1]]
    ids = [(p[0] - 2) * 62 + (p[1] - 2) for p in complete]
    assert len(set(ids)) == len(ids)
    assert [documents()[i] for i in ids] == complete
