"""torchrun --nproc_per_node=2 on CPU (gloo): disjoint samples covering the
epoch, the same number of steps on every rank, in the global order."""

import json
from pathlib import Path

import pytest

from .conftest import run_torchrun

pytest.importorskip("torch")

HERE = Path(__file__).resolve().parent


def test_two_ranks_with_torchrun(ids_dataset, tmp_path):
    run_torchrun(HERE / "torchrun_worker.py", ids_dataset, tmp_path)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert [r["rank_attr"] for r in ranks] == [0, 1]
    assert {r["world"] for r in ranks} == {2}
    steps = 1000 // (16 * 2)
    assert [r["steps"] for r in ranks] == [steps, steps]
    assert [r["len"] for r in ranks] == [steps, steps]
    assert {r["max_steps"] for r in ranks} == {steps}
    seen = [x for r in ranks for b in r["rows"] for x in b]
    assert len(seen) == len(set(seen)) == steps * 32
    order = ranks[0]["order"]
    merged = [x for s in range(steps) for r in ranks for x in r["rows"][s]]
    assert merged == order[: steps * 32]
