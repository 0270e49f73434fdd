"""torchrun --nproc_per_node=2 on CPU (gloo): disjoint samples covering the
epoch, the same number of steps on every rank, in the global order."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

HERE = Path(__file__).resolve().parent


def test_two_ranks_with_torchrun(ids_dataset, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("RANK", None)
    env.pop("WORLD_SIZE", None)
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
         "--master_port=0", "--rdzv_backend=c10d", "--rdzv_endpoint=localhost:0",
         str(HERE / "torchrun_worker.py"), str(ids_dataset), str(tmp_path)],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
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
