"""Smoke run of bench/tokens_bench.py --quick on a small corpus, without the contender venvs.

Keeps the token-packing and ragged benchmark from rotting: it generates both datasets,
runs memcpy, the mosaicrs TokenLoader, the torch DataLoader baseline of the ragged part and
the mosaicrs ragged Loader through the same code as `make bench-tokens`, and checks the
figures and the token and sample counts (never the speed). A mosaicrs API that the
installed build lacks must be reported as "unavailable:"; one that it has must run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

import tokens_bench  # noqa: E402

TOKENS = 1_000_000
ROWS = 8_000


def _has(module: str, name: str) -> bool:
    try:
        mod = __import__(module, fromlist=[name])
    except ImportError:
        return False
    return hasattr(mod, name)


def _by_name(entries: list) -> dict:
    return {e["name"]: e for e in entries}


def _ran(entry: dict, available: bool) -> bool:
    """Whether the entry ran; fails the test when it should have and did not."""
    if available:
        assert entry["ok"], entry
        return True
    assert not entry["ok"] and entry["error"].startswith("unavailable:"), entry
    print(f"SKIPPED in the smoke run: {entry['name']}: {entry['error']}")
    return False


@pytest.fixture(scope="module")
def doc(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("tokens-bench")
    out = tmp / "tokens.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "tokens_bench.py"),
            "--quick",
            "--no-install",
            "--in-process",
            f"--tokens={TOKENS}",
            f"--ragged-rows={ROWS}",
            "--contenders=memcpy,mosaicrs,torch-w0,mosaicrs-ragged",
            f"--work={tmp / 'data'}",
            f"--json={out}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "Token packing" in proc.stdout and "Ragged id lists" in proc.stdout
    assert not (tmp / "data").exists(), "the data folder is removed after the run"
    return json.loads(out.read_text())


def test_corpus_is_the_generated_one(doc):
    corpus = doc["tokens"]["corpus"]
    assert doc["tokens"]["meta"]["quick"] is True and doc["ragged"]["meta"]["quick"] is True
    assert corpus["tokens"] == TOKENS
    lengths = tokens_bench.doc_lengths(TOKENS, tokens_bench.SEED)
    assert corpus["documents"] == len(lengths)
    assert 1 <= corpus["max_length"] <= tokens_bench.MAX_DOC_TOKENS
    assert 300 < corpus["mean_length"] < 700


def test_token_figures(doc):
    tokens = doc["tokens"]
    entries = _by_name(tokens["contenders"])
    assert set(entries) == {"memcpy", "mosaicrs"}
    memcpy = entries["memcpy"]
    assert memcpy["ok"] and memcpy["tokens"] == TOKENS and memcpy["tokens_per_s"] > 0
    assert memcpy["bytes"] == 4 * TOKENS
    expected = tokens["expected"]
    assert expected["stream_tokens"] == TOKENS + tokens["corpus"]["documents"]
    mosaicrs = entries["mosaicrs"]
    if _ran(mosaicrs, _has("mosaicrs.torch", "TokenLoader")):
        # drop_last: whole [B, L] batches of the stream of documents + eos, nothing else.
        assert mosaicrs["tokens"] == expected["tokens"] > 0
        assert mosaicrs["total_tokens"] == expected["stream_tokens"]
        assert mosaicrs["batches_per_epoch"] == expected["steps"]
        assert mosaicrs["tokens_per_s"] > 0
        ratio = tokens["ratios"]["over_memcpy"]
        assert ratio["ratio"] > 0 and ratio["target"] == 0.3


def test_ragged_figures(doc):
    ragged = doc["ragged"]
    entries = _by_name(ragged["contenders"])
    assert set(entries) == {"torch-w0", "mosaicrs-ragged"}
    assert ragged["rows"] == ROWS
    expected = ragged["expected_samples"]
    assert expected == (ROWS // ragged["batch_size"]) * ragged["batch_size"] > 0
    torch_w0 = entries["torch-w0"]
    assert torch_w0["ok"] and torch_w0["samples"] == expected and torch_w0["samples_per_s"] > 0
    mine = entries["mosaicrs-ragged"]
    if _ran(mine, tokens_bench.ragged_api_available()):
        assert mine["samples"] == expected and mine["samples_per_s"] > 0
        assert ragged["ratios"]["over_fastest_python"]["against"] == "torch-w0"
