"""mosaicrs.Stream and mosaicrs.torch.Loader(streams=...): shares per batch,
the stream tensor, repeat/choose counts, resume (also on another world
size), schema checks, ragged columns of a mix. Mirrors rust-core/tests/mix.rs."""

import collections
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

torch = pytest.importorskip("torch")

import mosaicrs  # noqa: E402
import mosaicrs.torch as mt  # noqa: E402


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """Three datasets of 600, 300 and 40 rows; source k's ids are k*1000 + row."""
    base = tmp_path_factory.mktemp("mix")
    paths = []
    for k, n in enumerate([600, 300, 40]):
        ids = pa.array([k * 1000 + i for i in range(n)], pa.int64())
        x = pa.array([float(i) / 2 for i in range(n)], pa.float32())
        path = str(base / f"s{k}")
        mosaicrs.write(pa.table({"id": ids, "x": x}), path)
        paths.append(path)
    return paths


def streams(paths, weights):
    return [mosaicrs.Stream(p, weight=w) for p, w in zip(paths, weights)]


@pytest.mark.parametrize("pipeline", [False, True])
def test_every_batch_holds_each_share_and_names_its_source(sources, pipeline):
    loader = mt.Loader(
        streams=streams(sources, [0.6, 0.3, 0.1]), batch_size=10, stream_index=True, seed=3,
        _pipeline=pipeline,
    )
    assert len(loader) == 94
    seen = collections.Counter()
    for batch in loader:
        stream = batch["stream"]
        assert stream.dtype == torch.int64 and stream.shape == (10,)
        # Each sample's id says its source; x is its row / 2.
        assert torch.equal(batch["id"] // 1000, stream)
        assert torch.equal(batch["x"], (batch["id"] % 1000).float() / 2)
        assert torch.bincount(stream, minlength=3).tolist() == [6, 3, 1]
        seen.update((batch["id"]).tolist())
    # 94 batches of 940 samples: 564, 282 and 94 (each of the 40 rows 2 or 3 times).
    per_source = collections.Counter(i // 1000 for i in seen.elements())
    assert per_source == {0: 564, 1: 282, 2: 94}
    assert {seen[2000 + r] for r in range(40)} <= {2, 3}


def test_repeat_and_choose_counts_are_exact(sources):
    mix = [
        mosaicrs.Stream(sources[0], choose=50),
        mosaicrs.Stream(sources[1], repeat=0.5),
        mosaicrs.Stream(sources[2], repeat=2.5),
    ]
    loader = mt.Loader(streams=mix, batch_size=10, drop_last=False)
    ids = collections.Counter(i for b in loader for i in b["id"].tolist())
    assert sum(1 for i in ids if i < 1000) == 50 and all(ids[i] == 1 for i in ids if i < 2000)
    assert sum(1 for i in ids if 1000 <= i < 2000) == 150
    third = [ids[2000 + r] for r in range(40)]
    assert sorted(collections.Counter(third).items()) == [(2, 20), (3, 20)]


def test_resume_is_exact_on_another_world_size(sources):
    mix = streams(sources, [0.6, 0.3, 0.1])
    full = [b["id"].tolist() for b in mt.Loader(streams=mix, batch_size=12, seed=5)]
    flat = [i for b in full for i in b]
    first = mt.Loader(streams=mix, batch_size=6, seed=5, rank=0, world_size=2)
    it = iter(first)
    for _ in range(3):
        next(it)
    state = first.state_dict()
    first.close()
    assert state["samples_consumed"] == 36 and state["mix_block"] == 12
    ranks = []
    for rank in range(3):
        loader = mt.Loader(streams=mix, batch_size=4, seed=5, rank=rank, world_size=3)
        loader.load_state_dict(state)
        ranks.append([b["id"].tolist() for b in loader])
    rest = [i for step in zip(*ranks) for part in step for i in part]
    assert rest == flat[36:36 + len(rest)]
    assert len(rest) == (940 - 36) // 12 * 12


def test_bad_streams_are_named(sources, tmp_path):
    other = str(tmp_path / "other")
    mosaicrs.write(pa.table({"id": pa.array([1, 2], pa.int64()), "x": pa.array([1.0, 2.0])}), other)
    with pytest.raises(mosaicrs.InvalidInputError, match=r'mix source 1: column "x"'):
        mt.Loader(streams=[mosaicrs.Stream(sources[0]), mosaicrs.Stream(other)], batch_size=4)
    with pytest.raises(mosaicrs.InvalidInputError, match="at most one of weight, repeat and choose"):
        mosaicrs.Stream(sources[0], weight=1.0, repeat=2.0)
    with pytest.raises(mosaicrs.InvalidInputError, match="weight must be a number >= 0"):
        mosaicrs.Stream(sources[0], weight=-1)
    with pytest.raises(mosaicrs.InvalidInputError, match="mix source 1"):
        mt.Loader(streams=[mosaicrs.Stream(sources[0], weight=1.0), mosaicrs.Stream(sources[1])], batch_size=4)
    with pytest.raises(mosaicrs.InvalidInputError, match="not both"):
        mt.Loader(sources[0], 4, streams=streams(sources, [1, 1, 1]))
    with pytest.raises(mosaicrs.InvalidInputError, match="label"):
        mt.Loader(streams=streams(sources, [1, 1, 1]), batch_size=4, label="id", stream_index=True)


@pytest.mark.parametrize("pipeline", [False, True])
def test_ragged_columns_of_a_mix_with_the_stream(tmp_path, pipeline):
    # Source 1's lists are far longer than source 0's: its samples make the
    # values buffers spill and grow while earlier batches are held.
    paths = []
    for k, n in enumerate([90, 60]):
        lengths = [(r % 4) * (1 + 40 * k) for r in range(n)]
        path = str(tmp_path / f"r{k}")
        mosaicrs.write(pa.table({
            "id": pa.array([k * 1000 + r for r in range(n)], pa.int64()),
            "toks": pa.array([[k * 1000 + r] * m for r, m in enumerate(lengths)],
                             pa.list_(pa.int64())),
            "name": pa.array([f"s{k}r{r}" for r in range(n)]),
        }), path, batch_rows=16)
        paths.append(path)
    loader = mt.Loader(
        streams=streams(paths, [2, 1]), batch_size=6, epoch_size=120, seed=4, stream_index=True,
        columns=["id", "toks", "name"], ragged={"toks": "offsets", "name": "padded"},
        _pipeline=pipeline,
    )
    held = list(loader)
    assert len(held) == 20
    for batch in held:
        ids = batch["id"].tolist()
        assert torch.equal(batch["id"] // 1000, batch["stream"])
        assert torch.bincount(batch["stream"], minlength=2).tolist() == [4, 2]
        o = batch["toks"].offsets.tolist()
        got = [batch["toks"].values[a:b].tolist() for a, b in zip(o[:-1], o[1:])]
        assert got == [[i] * ((i % 1000) % 4 * (1 + 40 * (i // 1000))) for i in ids]
        names = [bytes(row[mask].tolist()).decode()
                 for row, mask in zip(batch["name"], batch["name_mask"])]
        assert names == [f"s{i // 1000}r{i % 1000}" for i in ids]
    clash = str(tmp_path / "clash")
    mosaicrs.write(pa.table({"stream": pa.array([1, 2], pa.int64())}), clash)
    with pytest.raises(mosaicrs.InvalidInputError, match='"stream" entry'):
        mt.Loader(streams=[mosaicrs.Stream(clash)], batch_size=2, stream_index=True)


def test_torchrun_two_ranks_resume_a_one_rank_mix(sources, tmp_path):
    """World size 1 -> 2 under torchrun, for a sample mix and a token mix:
    the ranks' steps, merged in rank order, continue the one-rank stream."""
    from .conftest import run_torchrun
    from .test_tokens import EOS, decode, write_mix_sources

    weights = [0.6, 0.3, 0.1]
    one = mt.Loader(streams=streams(sources, weights), batch_size=8, seed=5, stream_index=True)
    whole = [b["id"].tolist() for b in one]
    one = mt.Loader(streams=streams(sources, weights), batch_size=8, seed=5, stream_index=True)
    head = [b["id"].tolist() for _, b in zip(range(5), one)]
    token_paths, _ = write_mix_sources(tmp_path)
    tokens = lambda: mt.TokenLoader(  # noqa: E731
        streams=streams(token_paths, weights), seq_len=16, batch_size=4, eos_id=EOS, seed=7,
        drop_last=False, attention_mask=True)
    rows = lambda batch: [  # noqa: E731
        (ids, n) for ids, n in zip(batch["input_ids"].numpy(), batch["attention_mask"].sum(1))]
    token_whole = [r for b in tokens() for r in rows(b)]
    first = tokens()
    token_head = [r for _, b in zip(range(6), first) for r in rows(b)]
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({
        "samples": sources, "tokens": token_paths, "weights": weights,
        "sample_state": one.state_dict(), "token_state": first.state_dict(),
    }))
    run_torchrun(Path(__file__).resolve().parent / "torchrun_mix_worker.py", spec, tmp_path)
    ranks = [json.loads((tmp_path / f"mix{r}.json").read_text()) for r in range(2)]
    assert [(r["rank"], r["world"]) for r in ranks] == [(0, 2), (1, 2)]
    # Samples: every step on both ranks, the merged steps the global order.
    steps = len(ranks[0]["ids"])
    assert [len(r["ids"]) for r in ranks] == [steps, steps] == [r["max_sample_steps"] for r in ranks]
    merged = [x for s in range(steps) for r in ranks for x in r["ids"][s]]
    flat = [x for b in whole for x in b]
    assert [x for b in head for x in b] + merged == flat[: 40 + len(merged)]
    assert len(merged) == len(flat) - 40
    for r in ranks:
        for ids, src in zip(r["ids"], r["sources"]):
            assert [i // 1000 for i in ids] == src
    # Tokens: the merged rows carry the one-rank stream's documents on.
    steps = len(ranks[0]["rows"])
    assert [r["max_token_steps"] for r in ranks] == [steps, steps]
    merged_rows = [(ids, n) for s in range(steps) for r in ranks
                   for ids, n in zip(*r["rows"][s])]
    got = token_head + [(np.array(ids), n) for ids, n in merged_rows]
    assert decode(got) == decode(token_whole)


def write_s3_sources(moto_server, bucket, rows, step):
    """Datasets of `rows[k]` rows at s3://<bucket>/s<k> in shards of about 1 KiB,
    ids `k * step + row`; their URLs and indexes."""
    opts = moto_server.storage_options()
    moto_server.create_bucket(bucket)
    urls, indexes = [], []
    for k, n in enumerate(rows):
        ids = pa.array([k * step + i for i in range(n)], pa.int64())
        x = pa.array([float(i) / 2 for i in range(n)], pa.float32())
        url = f"s3://{bucket}/s{k}"
        mosaicrs.write(pa.table({"id": ids, "x": x}), url, shard_size="1k", batch_rows=50,
                       storage_options=opts)
        urls.append(url)
        indexes.append(json.loads(moto_server.get(bucket, f"s{k}/index.json")))
    return urls, indexes


def test_two_s3_sources_and_a_local_one(moto_server, sources, tmp_path):
    """A mix of two datasets on the S3 test server and a local one: exact
    counts per source, each remote one through the shared cache; a cache
    too small to hold a source is refused before the first batch, naming
    the source and the cache."""
    opts = moto_server.storage_options()
    urls, indexes = write_s3_sources(moto_server, "mix", [600, 300], 1000)
    mix = [mosaicrs.Stream(urls[0], weight=0.6, storage_options=opts),
           mosaicrs.Stream(urls[1], weight=0.3, storage_options=opts),
           mosaicrs.Stream(sources[2], weight=0.1)]
    loader = mt.Loader(streams=mix, batch_size=10, stream_index=True, seed=3,
                       cache_dir=tmp_path / "cache", cache_limit="64m")
    seen = collections.Counter()
    for batch in loader:
        assert torch.equal(batch["id"] // 1000, batch["stream"])
        assert torch.equal(batch["x"], (batch["id"] % 1000).float() / 2)
        assert torch.bincount(batch["stream"], minlength=3).tolist() == [6, 3, 1]
        seen.update(batch["id"].tolist())
    # 564 of source 0's 600 rows and 282 of source 1's 300, each once; each
    # of source 2's 40 rows 2 or 3 times.
    per_source = collections.Counter(i // 1000 for i in seen.elements())
    assert per_source == {0: 564, 1: 282, 2: 94}
    assert max(seen[i] for i in seen if i < 2000) == 1
    assert {seen[2000 + r] for r in range(40)} <= {2, 3}
    loader.close()
    small = dict(batch_size=10, cache_dir=tmp_path / "small",
                 cache_limit=indexes[0]["total_bytes"] // 2)
    with pytest.raises(Exception, match="raise cache_limit to at least") as refused:
        mt.Loader(streams=mix, **small)
    assert urls[0] in str(refused.value) and opts["aws_secret_access_key"] not in str(refused.value)


def test_s3_sources_larger_than_the_cache_stream_through_it(moto_server, sources, tmp_path):
    """Two S3 sources, each larger than the cache, and a local one: every
    row once per epoch with its values, the remote ones streamed through one
    cache; a cache that holds each streamed source alone but not both is
    refused before the first batch, naming both and the size."""
    opts = moto_server.storage_options()
    urls, indexes = write_s3_sources(moto_server, "mixstream", [1200, 900], 10000)
    largest = [max(s["bytes"] for s in index["shards"]) for index in indexes]
    totals = [index["total_bytes"] for index in indexes]
    # block-local:1 needs, per streamed source, its largest shard twice (the
    # block read and one fetched ahead).
    needed = 2 * sum(largest)
    limit = min(totals) - 1
    assert needed <= limit, (needed, totals)
    mix = [mosaicrs.Stream(urls[0], storage_options=opts),
           mosaicrs.Stream(urls[1], storage_options=opts),
           mosaicrs.Stream(sources[2])]
    cache = dict(cache_dir=tmp_path / "cache", cache_limit=limit)
    assert mosaicrs.Dataset(urls[0], opts, **cache).is_streamed
    loader = mt.Loader(streams=mix, batch_size=10, stream_index=True, seed=3,
                       shuffle="block-local:1", **cache)
    seen = collections.Counter()
    for batch in loader:
        # ids: source 0 from 0, source 1 from 10000, the local source 2 from 2000.
        ids = batch["id"]
        first = torch.where(ids >= 10000, 10000, torch.where(ids >= 2000, 2000, 0))
        assert torch.equal(torch.where(ids >= 10000, 1, torch.where(ids >= 2000, 2, 0)),
                           batch["stream"])
        assert torch.equal(batch["x"], (ids - first).float() / 2)
        seen.update(batch["id"].tolist())
    loader.close()
    expected = [k * 10000 + i for k, n in enumerate([1200, 900]) for i in range(n)]
    assert sorted(seen) == sorted(expected + list(range(2000, 2040)))
    assert set(seen.values()) == {1}
    with pytest.raises(Exception, match=f"raise cache_limit to at least {needed} bytes") as refused:
        mt.Loader(streams=mix, batch_size=10, shuffle="block-local:1",
                  cache_dir=tmp_path / "small", cache_limit=needed - 1)
    assert all(u in str(refused.value) for u in urls), refused.value


@pytest.mark.parametrize("pipeline", [False, True])
def test_batches_kept_through_a_storage_or_a_weak_reference_keep_their_values(sources,
                                                                               pipeline):
    """``stream_index=True`` batches: holding only a tensor's
    ``untyped_storage()`` keeps the batch, and a weak reference never gives
    back a refilled batch."""
    from .conftest import assert_kept, assert_ring_reused, keep_loosely

    loader = mt.Loader(streams=streams(sources, [0.6, 0.3, 0.1]), batch_size=10,
                       stream_index=True, seed=3, _pipeline=pipeline)
    kept: list = []
    for k, batch in enumerate(loader):
        for t in (batch["id"], batch["x"], batch["stream"]):
            keep_loosely(t, kept, weak=k % 2 == 1)
        del batch, t
    assert len(kept) == 3 * 94
    assert_kept(kept)
    assert_ring_reused(loader, kept)
