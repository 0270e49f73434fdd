"""mosaicrs.torch.TokenLoader: packed token batches checked against a plain
Python packing of the same documents (values, positions, padding, derived
tensors), resume mid-document and on another world size, held batches,
torchrun, torchdata, and bad input named."""

import collections
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

torch = pytest.importorskip("torch")

import mosaicrs  # noqa: E402
import mosaicrs.torch as mt  # noqa: E402
from mosaicrs.exceptions import ColumnNotFoundError, InvalidInputError  # noqa: E402

from .conftest import run_torchrun  # noqa: E402

HERE = Path(__file__).resolve().parent
EOS = 0
L = 16


def make_docs(n=300, seed=0, vocab=1000):
    """Documents of 1..60 tokens (many longer than L), tokens in [1, vocab):
    EOS never occurs inside a document."""
    rng = np.random.default_rng(seed)
    return [rng.integers(1, vocab, rng.integers(1, 61)).tolist() for _ in range(n)]


def write_docs(path, docs, value_type=pa.int32(), large=False, **extra):
    list_type = pa.large_list(value_type) if large else pa.list_(value_type)
    table = pa.table({"input_ids": pa.array(docs, list_type),
                      "doc": pa.array(np.arange(len(docs), dtype=np.int64)), **extra})
    mosaicrs.write(table, path, shard_size="8k", batch_rows=50)
    return path


@pytest.fixture
def docs_dataset(tmp_path):
    docs = make_docs()
    return write_docs(tmp_path / "docs.mosaicrs", docs), docs


def order(path, seed=0, epoch=0, shuffle=True):
    """The documents' epoch order: the one of mosaicrs.torch.Loader."""
    return mt.Loader(path, 1, columns=["doc"], seed=seed, shuffle=shuffle).order(epoch)


def pack(docs, L, eos=EOS):
    """The epoch's sequences as the contract defines them, in plain Python:
    (ids, positions, length) per sequence, the last one possibly partial."""
    ids, pos = [], []
    for d in docs:
        t = list(d) + ([eos] if eos is not None else [])
        ids += t
        pos += range(len(t))
    seqs = []
    for k in range(0, len(ids), L):
        row_ids, row_pos = ids[k:k + L], list(pos[k:k + L])
        # A document continuing from the previous row restarts at 0.
        off, j = row_pos[0], 0
        while j < len(row_pos) and (j == 0 or row_pos[j] != 0):
            row_pos[j] -= off
            j += 1
        seqs.append((row_ids, row_pos, len(row_ids)))
    return seqs, len(ids)


def expected_steps(seqs, total, B, W, drop_last=True, start=0, pad=EOS, L=L):
    """Per global step, per rank: (ids [B, L], positions [B, L], lengths [B])."""
    padding = ([pad] * L, list(range(L)), 0)
    full = []
    for ids, pos, n in seqs:
        if n < L:
            ids = ids + [pad] * (L - n)
            pos = pos + list(range(L - n))
        full.append((ids, pos, n))
    g = B * W
    if drop_last:
        steps = (total // L - start) // g
    else:
        steps = -(-(len(full) - start) // g)
    out = []
    for s in range(steps):
        rows = [full[k] if k < len(full) else padding
                for k in range(start + s * g, start + (s + 1) * g)]
        out.append([tuple(np.array([r[i] for r in rows[rk * B:(rk + 1) * B]])
                          for i in range(3)) for rk in range(W)])
    return out


def as_numpy(batch):
    return (batch["input_ids"].numpy().copy(), batch["position_ids"].numpy().copy(),
            batch["attention_mask"].sum(1).numpy())


def assert_batches(got, want):
    assert len(got) == len(want)
    for s, (g, w) in enumerate(zip(got, want)):
        for name, a, b in zip(("input_ids", "position_ids", "lengths"), g, w):
            np.testing.assert_array_equal(a, b, err_msg=f"step {s} {name}")


def decode(rows, eos=EOS):
    """Documents back from the real tokens of rows in global order."""
    stream = [t for ids, n in rows for t in ids[:n].tolist()]
    docs, cur = [], []
    for t in stream:
        if t == eos:
            docs.append(cur)
            cur = []
        else:
            cur.append(t)
    return docs, cur


# -- values -------------------------------------------------------------------


@pytest.mark.parametrize("drop_last", [True, False])
def test_batches_equal_the_packed_documents(docs_dataset, drop_last):
    path, docs = docs_dataset
    loader = mt.TokenLoader(path, seq_len=L, batch_size=4, eos_id=EOS, seed=3,
                            drop_last=drop_last, labels=True, attention_mask=True)
    in_order = [docs[r] for r in order(path, seed=3)]
    seqs, total = pack(in_order, L)
    assert loader.total_tokens == total == sum(len(d) + 1 for d in docs)
    want = expected_steps(seqs, total, 4, 1, drop_last)
    got = []
    for batch in loader:
        assert batch["input_ids"].shape == batch["position_ids"].shape == (4, L)
        assert batch["input_ids"].dtype == torch.int64
        got.append(as_numpy(batch))
    assert_batches(got, [w[0] for w in want])
    assert len(loader) == len(want)
    assert loader.tokens_per_epoch == len(want) * 4 * L
    rows = [(ids[r], n[r]) for ids, _, n in got for r in range(4)]
    back, tail = decode(rows)
    if drop_last:
        # Every token of the whole sequences, each exactly once, in order.
        assert back == in_order[:len(back)]
        if tail:
            assert tail == in_order[len(back)][:len(tail)]
        assert loader.dropped_tokens == total - len(got) * 4 * L
    else:
        assert back == in_order and tail == []
        assert loader.dropped_tokens == 0


def test_documents_longer_than_a_sequence_continue(tmp_path):
    docs = [list(range(1, 40)), [7], list(range(100, 150))]
    path = write_docs(tmp_path / "long", docs)
    loader = mt.TokenLoader(path, seq_len=L, batch_size=2, eos_id=EOS, shuffle=False,
                            drop_last=False, attention_mask=True)
    rows = [(b["input_ids"][r], int(b["attention_mask"][r].sum())) for b in loader for r in range(2)]
    back, tail = decode(rows)
    assert back == docs and tail == []


def test_exact_derived_tensors_on_a_tiny_dataset(tmp_path):
    path = write_docs(tmp_path / "tiny", [[1, 2, 3], [4, 5], [6, 7, 8, 9, 10]])
    loader = mt.TokenLoader(path, seq_len=4, batch_size=2, eos_id=0, shuffle=False,
                            drop_last=False, labels=True, attention_mask=True)
    first, second = list(loader)
    assert first["input_ids"].tolist() == [[1, 2, 3, 0], [4, 5, 0, 6]]
    assert first["position_ids"].tolist() == [[0, 1, 2, 3], [0, 1, 2, 0]]
    assert first["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 1, 1]]
    assert first["cu_seqlens"].dtype == torch.int32
    assert first["cu_seqlens"].tolist() == [0, 4, 7, 8]
    assert first["max_seqlen"] == 4
    assert first["labels"].tolist() == [[-100, 2, 3, 0], [-100, 5, 0, -100]]
    # The last document continues at position 0 of the next row; its eos
    # ends the stream, and padding (pad_id defaults to eos_id) is a segment.
    assert second["input_ids"].tolist() == [[7, 8, 9, 10], [0, 0, 0, 0]]
    assert second["position_ids"].tolist() == [[0, 1, 2, 3], [0, 0, 1, 2]]
    assert second["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 0, 0, 0]]
    assert second["cu_seqlens"].tolist() == [0, 4, 5, 8]
    assert second["max_seqlen"] == 4
    assert second["labels"].tolist() == [[-100, 8, 9, 10], [-100, -100, -100, -100]]
    assert set(first) == {"input_ids", "position_ids", "cu_seqlens", "max_seqlen",
                          "attention_mask", "labels"}
    # drop_last: only whole global steps of whole sequences.
    dropped = mt.TokenLoader(path, seq_len=4, batch_size=2, eos_id=0, shuffle=False,
                             attention_mask=True)
    assert [b["input_ids"].tolist() for b in dropped] == [[[1, 2, 3, 0], [4, 5, 0, 6]]]
    assert len(dropped) == 1 and "labels" not in next(iter(dropped))
    # Without eos the documents run into each other, positions still restart.
    plain = mt.TokenLoader(path, seq_len=5, batch_size=2, shuffle=False, pad_id=99,
                           drop_last=False, attention_mask=True)
    b = next(iter(plain))
    assert b["input_ids"].tolist() == [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]]
    assert b["position_ids"].tolist() == [[0, 1, 2, 0, 1], [0, 1, 2, 3, 4]]
    assert b["cu_seqlens"].tolist() == [0, 3, 5, 10] and b["max_seqlen"] == 5
    # max_seqlen is the longest segment, not L.
    six = mt.TokenLoader(path, seq_len=6, batch_size=1, eos_id=0, shuffle=False, labels=True,
                         attention_mask=True)
    b = next(iter(six))
    assert b["input_ids"].tolist() == [[1, 2, 3, 0, 4, 5]]
    assert b["cu_seqlens"].tolist() == [0, 4, 6] and b["max_seqlen"] == 4
    assert b["labels"].tolist() == [[-100, 2, 3, 0, -100, 5]]


@pytest.mark.parametrize("pipeline", [False, True])
def test_outputs_on_request_and_narrow_types(docs_dataset, pipeline):
    """position_ids and attention_mask as asked: left out, int32 or bool, and
    the same values as the int64 outputs; cu_seqlens also without positions."""
    path, _ = docs_dataset
    kw = dict(seq_len=L, batch_size=3, eos_id=EOS, seed=2, drop_last=False, labels=True,
              _pipeline=pipeline)
    full = list(mt.TokenLoader(path, attention_mask=True, **kw))
    assert full[-1]["attention_mask"].dtype == torch.int64
    assert int((full[-1]["attention_mask"] == 0).sum()) > 0  # the last batch is padded
    cases = [
        (dict(), {"input_ids": torch.int64, "position_ids": torch.int64}),
        (dict(dtype=torch.int32, position_ids=torch.int32, attention_mask=torch.bool),
         {"input_ids": torch.int32, "position_ids": torch.int32, "attention_mask": torch.bool}),
        (dict(position_ids=False, attention_mask=torch.int32),
         {"input_ids": torch.int64, "attention_mask": torch.int32}),
        (dict(position_ids=None, attention_mask=None), {"input_ids": torch.int64}),
    ]
    for options, dtypes in cases:
        got = list(mt.TokenLoader(path, **kw, **options))
        assert len(got) == len(full)
        for b, f in zip(got, full):
            assert set(b) == set(dtypes) | {"cu_seqlens", "max_seqlen", "labels"}, options
            for name, dtype in dtypes.items():
                assert b[name].dtype == dtype, (options, name)
                assert b[name].long().tolist() == f[name].tolist(), (options, name)
            assert b["cu_seqlens"].tolist() == f["cu_seqlens"].tolist()
            assert b["max_seqlen"] == f["max_seqlen"]
            assert b["labels"].tolist() == f["labels"].tolist()
    for bad in (dict(position_ids=torch.float32), dict(attention_mask=torch.int16),
                dict(attention_mask="yes")):
        with pytest.raises(InvalidInputError, match=next(iter(bad))):
            mt.TokenLoader(path, seq_len=L, batch_size=2, **bad)


@pytest.mark.parametrize("value_type,large,dtype", [
    (pa.int64(), False, torch.int64), (pa.uint16(), True, torch.int32),
    (pa.int8(), False, torch.int32),
])
def test_integer_types_and_dtypes(tmp_path, value_type, large, dtype):
    docs = make_docs(40, seed=2, vocab=100)
    path = write_docs(tmp_path / "t", docs, value_type, large)
    loader = mt.TokenLoader(path, seq_len=L, batch_size=3, eos_id=EOS, seed=1, dtype=dtype,
                            drop_last=False, vocab_size=100, attention_mask=True)
    got = [as_numpy(b) for b in loader]
    assert next(iter(loader))["input_ids"].dtype == dtype
    seqs, total = pack([docs[r] for r in order(path, seed=1)], L)
    assert_batches(got, [w[0] for w in expected_steps(seqs, total, 3, 1, False)])


def test_ranks_take_their_block_of_each_global_step(docs_dataset):
    path, docs = docs_dataset
    seqs, total = pack([docs[r] for r in order(path, seed=5)], L)
    for drop_last in (True, False):
        want = expected_steps(seqs, total, 2, 3, drop_last)
        for r in range(3):
            loader = mt.TokenLoader(path, seq_len=L, batch_size=2, eos_id=EOS, seed=5,
                                    rank=r, world_size=3, drop_last=drop_last, attention_mask=True)
            assert len(loader) == len(want)
            assert_batches([as_numpy(b) for b in loader], [w[r] for w in want])


def test_rows_selection_and_pipeline(docs_dataset):
    path, docs = docs_dataset
    rows = list(range(0, 300, 3))
    loader = mt.TokenLoader(path, seq_len=L, batch_size=4, eos_id=EOS, rows=rows,
                            shuffle=False, drop_last=False, _pipeline=True, attention_mask=True)
    back, tail = decode([(b["input_ids"][r], int(b["attention_mask"][r].sum()))
                         for b in loader for r in range(4)])
    assert back == [docs[r] for r in rows] and tail == []


# -- state ------------------------------------------------------------------


def run(loader, limit=None):
    out = []
    for k, batch in enumerate(loader):
        out.append(as_numpy(batch))
        if limit is not None and k + 1 == limit:
            break
    return out


@pytest.mark.parametrize("pipeline", [False, True])
def test_resume_mid_document_continues_exactly(docs_dataset, pipeline):
    path, _ = docs_dataset
    kw = dict(seq_len=L, batch_size=3, eos_id=EOS, seed=2, _pipeline=pipeline,
              attention_mask=True)
    full = mt.TokenLoader(path, **kw)
    whole = run(full) + run(full)  # two epochs
    first = mt.TokenLoader(path, **kw)
    got = run(first, 7)
    state = first.state_dict()
    json.dumps(state)
    assert state["epoch"] == 0 and state["sequences_consumed"] == 21
    assert state["cursor_token"] > 0  # mid-document (this seed and L)
    first.close()
    resumed = mt.TokenLoader(path, **kw)
    resumed.load_state_dict(state)
    resumed.set_epoch(0)  # a resumed loop calling set_epoch keeps its position
    got += run(resumed)
    assert resumed.epoch == 1
    got += run(resumed)
    assert_batches(got, whole)


def test_segments_and_labels_follow_the_positions(docs_dataset):
    path, _ = docs_dataset
    loader = mt.TokenLoader(path, seq_len=L, batch_size=3, eos_id=EOS, seed=9, labels=True,
                            drop_last=False, attention_mask=True)
    padded = 0
    for batch in loader:
        pos = batch["position_ids"].flatten().numpy()
        starts = np.flatnonzero(pos == 0)  # documents, rows and padding restart at 0
        cu = np.append(starts, pos.size)
        assert batch["cu_seqlens"].tolist() == cu.tolist()
        assert batch["max_seqlen"] == int(np.diff(cu).max())
        labels = batch["input_ids"].flatten().numpy().astype(np.int64).copy()
        labels[starts] = -100
        labels[batch["attention_mask"].flatten().numpy() == 0] = -100
        np.testing.assert_array_equal(batch["labels"].flatten().numpy(), labels)
        padded += int((batch["attention_mask"] == 0).sum())
    assert padded > 0


def test_resume_on_another_world_size_continues_the_global_stream(docs_dataset):
    path, docs = docs_dataset
    seqs, total = pack([docs[r] for r in order(path, seed=4)], L)
    one = mt.TokenLoader(path, seq_len=L, batch_size=4, eos_id=EOS, seed=4, attention_mask=True)
    seen = run(one, 5)
    state = one.state_dict()
    assert_batches(seen, [w[0] for w in expected_steps(seqs, total, 4, 1)[:5]])
    # Three ranks of one row each, in one process: sequence 20 onwards.
    want = expected_steps(seqs, total, 1, 3, start=20)
    loaders = [mt.TokenLoader(path, seq_len=L, batch_size=1, eos_id=EOS, seed=4,
                              rank=r, world_size=3, attention_mask=True) for r in range(3)]
    for r, loader in enumerate(loaders):
        loader.load_state_dict(state)
        assert len(loader) == (total // L) // 3  # a whole epoch
        assert_batches(run(loader), [w[r] for w in want])
        assert loader.state_dict()["epoch"] == 1


def test_set_epoch_and_len(docs_dataset):
    path, docs = docs_dataset
    loader = mt.TokenLoader(path, seq_len=L, batch_size=4, eos_id=EOS, seed=6, attention_mask=True)
    run(loader, 3)
    loader.set_epoch(2)
    assert loader.state_dict()["sequences_consumed"] == 0 and loader.epoch == 2
    seqs, total = pack([docs[r] for r in order(path, seed=6, epoch=2)], L)
    assert_batches(run(loader), [w[0] for w in expected_steps(seqs, total, 4, 1)])
    assert order(path, seed=6, epoch=2) != order(path, seed=6, epoch=0)
    assert len(loader) == (total // L) // 4
    # A loop that stops right after an epoch's last batch: the state is the
    # next epoch's start, and the next loop runs that epoch whole.
    steps = len(loader)
    for k, _ in enumerate(loader):
        if k == steps - 1:
            break
    assert loader.state_dict()["epoch"] == 4
    assert sum(1 for _ in loader) == steps and loader.epoch == 5
    loader.set_epoch(7)
    assert sum(1 for _ in loader) == steps and loader.epoch == 8


def test_a_state_of_another_setup_is_refused(docs_dataset, tmp_path):
    path, _ = docs_dataset
    state = mt.TokenLoader(path, seq_len=L, batch_size=2, eos_id=EOS, seed=1).state_dict()
    for kw in (dict(seed=2), dict(seq_len=L + 1), dict(eos_id=5), dict(shuffle=False)):
        args = dict(seq_len=L, batch_size=2, eos_id=EOS, seed=1) | kw
        name = next(iter(kw))
        with pytest.raises(InvalidInputError, match=name):
            mt.TokenLoader(path, **args).load_state_dict(state)
    other = write_docs(tmp_path / "other", make_docs(20, seed=9))
    with pytest.raises(InvalidInputError, match="dataset"):
        mt.TokenLoader(other, seq_len=L, batch_size=2, eos_id=EOS, seed=1).load_state_dict(state)


# -- buffers ------------------------------------------------------------------


def test_held_batches_are_never_overwritten(docs_dataset):
    path, docs = docs_dataset
    loader = mt.TokenLoader(path, seq_len=L, batch_size=4, eos_id=EOS, seed=8, labels=True,
                            attention_mask=True)
    kept, views = [], []
    for batch in loader:
        kept.append(batch)
        views.append(batch["input_ids"][0].numpy())  # a numpy view of the ring buffer
    seqs, total = pack([docs[r] for r in order(path, seed=8)], L)
    assert_batches([as_numpy(b) for b in kept], [w[0] for w in expected_steps(seqs, total, 4, 1)])
    for b, v in zip(kept, views):
        np.testing.assert_array_equal(v, b["input_ids"][0].numpy())
        labels = b["input_ids"].clone()
        labels[b["position_ids"] == 0] = -100
        assert torch.equal(b["labels"], labels)
    # Released batches are reused: a second epoch runs in a small ring.
    del kept, views, b
    slots = len(loader._slots)
    for _ in range(2):
        for batch in loader:
            pass
    assert len(loader._slots) == slots


def test_batches_held_from_cpp_or_by_one_tensor_are_kept(docs_dataset):
    # Batches hand out the ring's own tensor objects: an autograd graph that saved
    # input_ids itself (no Python reference, no other tensor over its storage), a
    # lone cu_seqlens or a lone view must each keep their batch from being refilled.
    path, _ = docs_dataset
    loader = mt.TokenLoader(path, seq_len=L, batch_size=4, eos_id=EOS, seed=8)
    w = torch.ones(L, requires_grad=True)
    held = []  # (what is kept, a copy of its values when the batch came)
    for i, batch in enumerate(loader):
        if i % 3 == 0:
            out = (batch["input_ids"] * w).sum()  # the graph saves input_ids itself
            held.append((out, batch["input_ids"].clone()))
        elif i % 3 == 1:
            held.append((batch["cu_seqlens"], batch["cu_seqlens"].clone()))
        else:
            held.append((batch["position_ids"][1], batch["position_ids"][1].clone()))
        del batch
    graphs = 0
    for kept, values in held:
        if kept.requires_grad:
            # The gradient is computed from the saved ids.
            w.grad = None
            kept.backward()
            assert torch.equal(w.grad, values.sum(0).to(torch.float32))
            graphs += 1
        else:
            assert torch.equal(kept, values)
    assert graphs > 3


# -- trainers ------------------------------------------------------------------


def test_torchdata_stateful_dataloader_resumes(docs_dataset):
    tdl = pytest.importorskip("torchdata.stateful_dataloader")
    path, _ = docs_dataset
    kw = dict(seq_len=L, batch_size=4, eos_id=EOS, seed=3)
    dl = tdl.StatefulDataLoader(mt.TokenIterableDataset(path, **kw), batch_size=None)
    it = iter(dl)
    for _ in range(5):
        next(it)
    sd = dl.state_dict()
    rest = [b["input_ids"].tolist() for b in it]
    dl2 = tdl.StatefulDataLoader(mt.TokenIterableDataset(path, **kw), batch_size=None)
    dl2.load_state_dict(sd)
    assert [b["input_ids"].tolist() for b in dl2] == rest
    assert len(dl2) == 5 + len(rest)


def test_dataloader_worker_processes_are_refused(docs_dataset):
    path, _ = docs_dataset
    ds = mt.TokenIterableDataset(path, seq_len=L, batch_size=4, eos_id=EOS)
    dl = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=1,
                                     multiprocessing_context="fork", timeout=60)
    with pytest.raises(RuntimeError, match=r"TokenIterableDataset.*num_workers=0"):
        next(iter(dl))
    assert len(list(torch.utils.data.DataLoader(ds, batch_size=None))) == len(ds)


def test_torchrun_two_ranks_resume_a_one_rank_run(docs_dataset, tmp_path):
    """World size 1 -> 2 through a saved state: the union of every rank's
    tokens is the source, each token once, in the global stream's order."""
    path, docs = docs_dataset
    seqs, total = pack([docs[r] for r in order(path, seed=7)], L)
    one = mt.TokenLoader(path, seq_len=L, batch_size=4, eos_id=EOS, seed=7, drop_last=False,
                         attention_mask=True)
    first = run(one, 9)
    state_file = tmp_path / "state.json"
    state_file.write_text(json.dumps(one.state_dict()))
    run_torchrun(HERE / "torchrun_tokens_worker.py", path, tmp_path, state_file)
    ranks = [json.loads((tmp_path / f"tokens{r}.json").read_text()) for r in range(2)]
    assert [(r["rank"], r["world"]) for r in ranks] == [(0, 2), (1, 2)]
    assert ranks[0]["steps"] == ranks[1]["steps"] == ranks[0]["max_steps"]
    rows = [(np.array(ids[i]), n) for ids, _, ns in first for i, n in enumerate(ns)]
    for s in range(ranks[0]["steps"]):
        for r in ranks:
            rows += [(np.array(i), n) for i, n in zip(r["ids"][s], r["lengths"][s])]
    back, tail = decode(rows)
    assert back == [docs[r] for r in order(path, seed=7)] and tail == []
    want = expected_steps(seqs, total, 2, 2, drop_last=False, start=36)
    for s, w in enumerate(want):
        for r in range(2):
            assert ranks[r]["ids"][s] == w[r][0].tolist()
            assert ranks[r]["positions"][s] == w[r][1].tolist()


# -- bad input -------------------------------------------------------------------


def test_bad_input_is_named(tmp_path):
    good = make_docs(10)
    floats = write_docs(tmp_path / "floats", [[float(t) for t in d] for d in good], pa.float32())
    with pytest.raises(InvalidInputError, match='"input_ids".*Float32'):
        mt.TokenLoader(floats, seq_len=L, batch_size=2)
    strings = write_docs(tmp_path / "strings", good, text=pa.array(["a"] * 10))
    with pytest.raises(InvalidInputError, match='"text".*Utf8'):
        mt.TokenLoader(strings, seq_len=L, batch_size=2, column="text")
    with pytest.raises(ColumnNotFoundError, match="tokens"):
        mt.TokenLoader(strings, seq_len=L, batch_size=2, column="tokens")
    empty = write_docs(tmp_path / "empty", good[:7] + [[]] + good[8:])
    with pytest.raises(InvalidInputError, match=r'"input_ids".*empty.*row 7'):
        mt.TokenLoader(empty, seq_len=L, batch_size=2)
    nulls = write_docs(tmp_path / "nulls", good[:4] + [None] + good[5:])
    with pytest.raises(InvalidInputError, match=r'"input_ids".*null.*row 4'):
        mt.TokenLoader(nulls, seq_len=L, batch_size=2)
    big = write_docs(tmp_path / "big", good[:5] + [[3, 1000, 4]] + good[6:])
    with pytest.raises(InvalidInputError, match=r'"input_ids".*token 1000.*row 5'):
        list(mt.TokenLoader(big, seq_len=L, batch_size=2, vocab_size=1000, shuffle=False))
    wide = write_docs(tmp_path / "wide", good[:2] + [[5, 2**40]] + good[3:], pa.int64())
    with pytest.raises(InvalidInputError, match=r'"input_ids".*1099511627776.*row 2.*int32'):
        list(mt.TokenLoader(wide, seq_len=L, batch_size=2, dtype=torch.int32))
    ok = write_docs(tmp_path / "ok", good)
    for bad in (0, -1, 2.5, "8", True):
        with pytest.raises(InvalidInputError, match="seq_len"):
            mt.TokenLoader(ok, seq_len=bad, batch_size=2)
        with pytest.raises(InvalidInputError, match="batch_size"):
            mt.TokenLoader(ok, seq_len=L, batch_size=bad)
    with pytest.raises(InvalidInputError, match="dtype"):
        mt.TokenLoader(ok, seq_len=L, batch_size=2, dtype=torch.float32)
    with pytest.raises(InvalidInputError, match="rank"):
        mt.TokenLoader(ok, seq_len=L, batch_size=2, rank=2, world_size=2)
    loader = mt.TokenLoader(ok, seq_len=L, batch_size=2)
    loader.close()
    with pytest.raises(RuntimeError, match="closed"):
        next(iter(loader))


# -- mixing -------------------------------------------------------------------


def write_mix_sources(base, sizes=(120, 60, 30)):
    """Three token datasets; token ``(k+1)*100000 + i*100 + j`` is token ``j``
    of document ``i`` of source ``k``, so every token names its place."""
    rng = np.random.default_rng(5)
    paths, all_docs = [], []
    for k, n in enumerate(sizes):
        docs = [[(k + 1) * 100_000 + i * 100 + j for j in range(int(rng.integers(1, 40)))]
                for i in range(n)]
        path = base / f"tok{k}"
        write_docs(path, docs)
        paths.append(str(path))
        all_docs.append(docs)
    return paths, all_docs


@pytest.fixture(scope="module")
def mix_sources(tmp_path_factory):
    return write_mix_sources(tmp_path_factory.mktemp("token-mix"))


def mix_streams(paths, weights=(0.6, 0.3, 0.1)):
    return [mosaicrs.Stream(p, weight=w) for p, w in zip(paths, weights)]


def place(doc):
    """(source, document) of a decoded document."""
    return doc[0] // 100_000 - 1, (doc[0] % 100_000) // 100


def test_a_mix_packs_each_sources_share_once(mix_sources):
    paths, docs = mix_sources
    B = 5
    loader = mt.TokenLoader(streams=mix_streams(paths), seq_len=L, batch_size=B, eos_id=EOS,
                            seed=1, drop_last=False, attention_mask=True)
    # 210 documents: 126 of source 0 (6 of its 120 twice), 63 of 60, 21 of 30.
    assert loader.mix_counts == [126, 63, 21]
    rows, touched = [], []
    for batch in loader:
        ids, _, lengths = as_numpy(batch)
        rows += list(zip(ids, lengths))
        touched += list(zip(loader.last_sources, loader.last_documents))
    back, tail = decode(rows)
    assert tail == []
    placed = [place(d) for d in back]
    # Every document whole, each source's share exactly, rows once or twice.
    assert all(d == docs[k][i] for d, (k, i) in zip(back, placed))
    counts = collections.Counter(k for k, _ in placed)
    assert [counts[k] for k in range(3)] == [126, 63, 21]
    for k, (share, n) in enumerate(zip([126, 63, 21], [120, 60, 30])):
        seen = collections.Counter(i for kk, i in placed if kk == k)
        passes = share // n
        assert set(seen.values()) <= {passes, passes + 1} and sum(seen.values()) == share
    # Each block of B documents (the default block, W = 1): 3 / 1.5 / 0.5.
    for s in range(0, len(placed) - len(placed) % B, B):
        block = collections.Counter(k for k, _ in placed[s:s + B])
        assert block[0] == 3 and block[1] in (1, 2) and block[2] in (0, 1)
    # The documents each batch touched, with their sources, in stream order.
    dedup = [p for j, p in enumerate(touched) if j == 0 or touched[j - 1] != p]
    assert dedup == [p for j, p in enumerate(placed) if j == 0 or placed[j - 1] != p]
    assert sum(len(d) + 1 for d in back) == loader.total_tokens


def test_a_mix_resumes_on_another_world_size(mix_sources):
    paths, _ = mix_sources
    kw = dict(streams=mix_streams(paths), seq_len=L, eos_id=EOS, seed=8, drop_last=False,
              attention_mask=True)
    whole = run(mt.TokenLoader(batch_size=4, **kw))
    first = mt.TokenLoader(batch_size=4, **kw)
    got = run(first, 3)
    state = first.state_dict()
    assert state["mix_block"] == 4
    json.dumps(state)
    ranks = [mt.TokenLoader(batch_size=2, rank=r, world_size=3, **kw) for r in range(3)]
    for r in ranks:
        r.load_state_dict(state)
    rest = list(zip(*(run(r) for r in ranks)))
    rows = [(ids[i], n[i]) for ids, _, n in got for i in range(4)]
    rows += [(ids[i], n[i]) for step in rest for ids, _, n in step for i in range(2)]
    want = [(ids[i], n[i]) for ids, _, n in whole for i in range(4)]
    assert decode(rows) == decode(want)
    # A mix's state is refused by one dataset's loader, and the reverse.
    with pytest.raises(ValueError, match="mix"):
        mt.TokenLoader(paths[0], seq_len=L, batch_size=4, eos_id=EOS, seed=8).load_state_dict(state)
    single = mt.TokenLoader(paths[0], seq_len=L, batch_size=4, eos_id=EOS, seed=8)
    with pytest.raises(ValueError, match="dataset"):
        mt.TokenLoader(batch_size=4, **kw).load_state_dict(single.state_dict())


def test_a_mix_source_without_the_column_is_named(mix_sources, tmp_path):
    paths, _ = mix_sources
    other = tmp_path / "other"
    mosaicrs.write(pa.table({"text": pa.array(["a", "b"])}), other)
    with pytest.raises(Exception, match="mix source 1"):
        mt.TokenLoader(streams=mix_streams([paths[0], str(other), paths[2]]), seq_len=L,
                       batch_size=2)
    with pytest.raises(InvalidInputError, match="not both"):
        mt.TokenLoader(paths[0], streams=mix_streams(paths), seq_len=L, batch_size=2)


@pytest.mark.parametrize("pipeline", [False, True])
def test_batches_kept_through_a_storage_or_a_weak_reference_keep_their_values(docs_dataset,
                                                                               pipeline):
    """Holding only a batch tensor's ``untyped_storage()`` keeps the batch from
    being refilled, a weak reference never gives back a refilled batch, and a
    tensor whose class was reassigned is not handed out again."""
    from .conftest import assert_kept, assert_ring_reused, keep_loosely

    class Tagged(torch.Tensor):
        pass

    path, _ = docs_dataset
    loader = mt.TokenLoader(path, seq_len=L, batch_size=4, eos_id=EOS, seed=8, labels=True,
                            _pipeline=pipeline)
    kept: list = []
    names = ["input_ids", "position_ids", "labels", "cu_seqlens"]
    for k, batch in enumerate(loader):
        assert all(type(batch[n]) is torch.Tensor for n in names)
        for n in names:
            keep_loosely(batch[n], kept, weak=k % 2 == 1)
        if k % 3 == 2:
            batch["position_ids"].__class__ = Tagged
        del batch
    assert len(kept) > 4 * 20
    assert_kept(kept)
    assert_ring_reused(loader, kept)
