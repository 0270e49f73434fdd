"""examples/python/recommender.py: dense features plus two id-list columns,
as Loader ragged batches into one nn.EmbeddingBag, reach a held-out accuracy
that needs the id lists (the generated labels depend more on them than on
the dense features)."""

import importlib.util
from pathlib import Path

import pyarrow as pa
import pytest

mosaicrs = pytest.importorskip("mosaicrs", reason="run `make python` to install the wheel")
torch = pytest.importorskip("torch")
import mosaicrs.torch as mt  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def load_example():
    spec = importlib.util.spec_from_file_location(
        "recommender", REPO / "examples" / "python" / "recommender.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_recommender_learns_from_the_id_lists(tmp_path):
    example = load_example()
    out = str(tmp_path / "clicks.mosaicrs")
    example.make_dataset(out, rows=6000)

    # The id lists arrive as the rows' own ids: Ragged values and offsets.
    table = pa.table(mosaicrs.Dataset(out))
    with mt.Loader(out, 64, columns=["id", "items", "cats"], shuffle=False,
                   ragged={"items": "offsets", "cats": "offsets"}) as loader:
        batch = next(iter(loader))
    rows = batch["id"].tolist()
    items = batch["items"]
    assert [items.values[a:b].tolist() for a, b in zip(items.offsets[:-1], items.offsets[1:])] \
        == [table.column("items")[r].as_py() for r in rows]

    result = example.train(out, epochs=3, quiet=True, device="cpu")
    assert result["holdout_rows"] + result["train_rows"] == 6000
    assert result["accuracy"] > 0.8, result
    assert result["accuracy"] > result["majority"] + 0.25, result
