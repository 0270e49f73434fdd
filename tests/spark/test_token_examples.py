"""examples/python/pretrain_tokens.py and decode_images.py on the shared
Spark session with the connector jar: Spark tokenizes text in a pandas UDF and
a causal transformer's loss falls on TokenLoader batches; Spark's binaryFile
source writes JPEGs and every image decoded from Loader batches equals
torchvision's decode of its file."""

import importlib.util
from pathlib import Path

import pyarrow as pa
import pytest

mosaicrs = pytest.importorskip("mosaicrs", reason="run `make python` to install the wheel")
torch = pytest.importorskip("torch")

REPO = Path(__file__).resolve().parents[2]


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "examples" / "python" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pretrain_tokens_loss_falls(spark, connector_jar, tmp_path):
    example = load_example("pretrain_tokens")
    text = example.make_corpus(tmp_path / "text", files=2, lines=150)
    out = str(tmp_path / "tokens.mosaicrs")
    documents = example.write_with_spark(str(text), out, str(connector_jar), spark=spark)
    assert documents == 300
    # The dataset holds exactly the tokenizer's output for every line.
    lines = sorted(line for f in sorted(text.glob("*.txt"))
                   for line in f.read_text(encoding="utf-8").splitlines())
    written = pa.table(mosaicrs.Dataset(out)).column("input_ids").to_pylist()
    assert sorted(example.decode(ids) for ids in written) == lines
    assert all(ids[0] == example.BOS for ids in written)

    result = example.train(out, steps=40, seq_len=64, batch_size=8, d_model=64, quiet=True,
                           device="cpu")
    assert result["steps"] == 40
    assert result["first_loss"] > 5.0  # about ln(258) at the start
    assert result["last_loss"] < result["first_loss"] - 1.5, result["losses"]


def test_document_causal_mask_keeps_documents_apart():
    example = load_example("pretrain_tokens")
    # Row 0: a document of 3 tokens then one of 2; row 1: one of 5.
    positions = torch.tensor([[0, 1, 2, 0, 1], [0, 1, 2, 3, 4]])
    blocked = example.document_causal_mask(positions)
    allowed0 = ~blocked[0]
    assert allowed0.tolist() == [
        [True, False, False, False, False],
        [True, True, False, False, False],
        [True, True, True, False, False],
        [False, False, False, True, False],
        [False, False, False, True, True],
    ]
    assert torch.equal(~blocked[1], torch.ones(5, 5, dtype=torch.bool).tril())


def test_decode_images_from_binary_file(spark, connector_jar, tmp_path):
    import torchvision  # scripts/requirements.txt
    example = load_example("decode_images")
    images = example.make_images(tmp_path / "images", count=10)
    out = str(tmp_path / "images.mosaicrs")
    assert example.write_with_spark(str(images), out, str(connector_jar), spark=spark) == 10
    result = example.decode(out, batch_size=4, device="cpu", quiet=True)
    assert len(result["images"]) == 10 and result["decoded"] == 12  # 3 batches of 4
    for name, image in result["images"].items():
        path = Path(name.removeprefix("file:"))
        reference = torchvision.io.decode_jpeg(torchvision.io.read_file(str(path)))
        assert torch.equal(image, reference), name
    assert {tuple(i.shape) for i in result["images"].values()} >= {(3, 32, 48), (3, 48, 56)}
