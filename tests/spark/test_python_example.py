"""examples/python/train_digits.py: Spark writes the digits through the
connector jar and the jar-free writer; a torch.nn loop on mosaicrs.torch
reaches a held-out accuracy that only learning gives (chance is 10%)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mosaicrs", reason="run `make python` to install the wheel")
pytest.importorskip("torch")

REPO = Path(__file__).resolve().parents[2]


def load_example():
    spec = importlib.util.spec_from_file_location(
        "train_digits", REPO / "examples" / "python" / "train_digits.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("writer", ["jar", "mosaicrs_py"])
def test_example_accuracy(request, tmp_path, writer):
    from .test_python_datasource import session_without_jar_requirement

    connector_jar = request.getfixturevalue("connector_jar") if writer == "jar" else None
    spark = session_without_jar_requirement(request)
    example = load_example()
    csv = tmp_path / "digits.csv"
    subprocess.run([sys.executable, str(REPO / "scripts" / "make_digits_csv.py"), str(csv)],
                   check=True)
    out = str(tmp_path / "digits.mosaicrs")
    example.write_with_spark(str(csv), out, str(connector_jar) if writer == "jar" else None,
                             spark=spark)
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the example's default (--torch-threads 1)
    try:
        result = example.train(out, epochs=15)
    finally:
        torch.set_num_threads(threads)
    assert result["train_rows"] + result["holdout_rows"] == 1797
    assert result["accuracy"] > 0.9, result
