"""Variable-length lists, strings and binary columns through
`mosaicrs.torch.Loader(ragged=...)`: values equal the source under every
layout, nulls follow the policy, the ring grows without overwriting held
batches, and bad input is named."""

from typing import Any, Dict, List

import numpy as np
import pyarrow as pa
import pytest

mosaicrs = pytest.importorskip("mosaicrs", reason="the mosaicrs wheel is not installed")
torch = pytest.importorskip("torch")
import mosaicrs.torch as mt  # noqa: E402

N = 240
NUMERIC = {
    "l_i8": (pa.int8(), torch.int8),
    "l_i16": (pa.int16(), torch.int16),
    "l_i32": (pa.int32(), torch.int32),
    "l_i64": (pa.int64(), torch.int64),
    "l_u8": (pa.uint8(), torch.uint8),
    "l_u16": (pa.uint16(), torch.int32),
    "l_u32": (pa.uint32(), torch.int64),
    "l_u64": (pa.uint64(), torch.int64),
    "l_f32": (pa.float32(), torch.float32),
    "l_f64": (pa.float64(), torch.float64),
}
BYTES = ["s", "ls", "b", "lb"]
D = 3


def _length(r: int) -> int:
    return (r * 7) % 11  # 0..10, empty rows included


def _null(r: int) -> bool:
    return r % 17 == 5


def ragged_table() -> pa.Table:
    cols: Dict[str, Any] = {"id": pa.array(np.arange(N), pa.int64())}
    for name, (t, _) in NUMERIC.items():
        rows = [None if _null(r) else [(r + k) % 100 for k in range(_length(r))] for r in range(N)]
        cols[name] = pa.array(rows, pa.list_(t))
    cols["ll_i32"] = pa.array(
        [None if _null(r) else [r * 10 + k for k in range(_length(r))] for r in range(N)],
        pa.large_list(pa.int32()),
    )
    text = [None if _null(r) else "é" * (r % 4) + f"row{r}" * (r % 3) for r in range(N)]
    cols["s"] = pa.array(text, pa.string())
    cols["ls"] = pa.array(text, pa.large_string())
    blobs = [None if _null(r) else bytes([r % 256]) * _length(r) for r in range(N)]
    cols["b"] = pa.array(blobs, pa.binary())
    cols["lb"] = pa.array(blobs, pa.large_binary())
    cols["nest"] = pa.array(
        [None if _null(r) else [[float(r), float(k), -1.5] for k in range(_length(r))]
         for r in range(N)],
        pa.list_(pa.list_(pa.float32())),
    )
    return pa.table(cols)


RAGGED_COLS = list(NUMERIC) + ["ll_i32", "nest"] + BYTES


@pytest.fixture(scope="module")
def ragged_ds(tmp_path_factory) -> Any:
    table = ragged_table()
    path = tmp_path_factory.mktemp("ragged") / "ragged.mosaicrs"
    mosaicrs.write(table, path, shard_size="8k", batch_rows=50)
    return path, table


def expected(table: pa.Table, col: str, r: int) -> List[Any]:
    v = table.column(col)[r].as_py()
    if v is None:
        return []
    if isinstance(v, str):
        return list(v.encode())
    if isinstance(v, bytes):
        return list(v)
    return v


def rows_of(batch: Dict[str, Any], col: str, layout: str) -> List[List[Any]]:
    item = batch[col]
    if layout == "offsets":
        assert isinstance(item, mt.Ragged)
        assert item.offsets.dtype == torch.int64 and int(item.offsets[0]) == 0
        assert item.lengths.tolist() == (item.offsets[1:] - item.offsets[:-1]).tolist()
        o = item.offsets.tolist()
        return [item.values[a:b].tolist() for a, b in zip(o[:-1], o[1:])]
    if layout == "jagged":
        assert item.is_nested and item.layout == torch.jagged
        return [t.tolist() for t in item.unbind()]
    mask = batch[col + "_mask"]
    assert mask.dtype == torch.bool and mask.shape == item.shape[:2]
    return [row[: int(m.sum())].tolist() for row, m in zip(item, mask)]


def check_batch(batch: Dict[str, Any], table: pa.Table, layout: str, cut: Any = None) -> None:
    ids = batch["id"].tolist()
    for col in RAGGED_COLS:
        got = rows_of(batch, col, layout)
        values = batch[col].values if layout == "offsets" else batch[col]
        if col in NUMERIC:
            assert values.dtype == NUMERIC[col][1], col
        elif col in BYTES:
            assert values.dtype == torch.uint8, col
        for r, row in zip(ids, got):
            want = expected(table, col, r)
            if cut is not None:
                want = want[:cut]
            assert row == want, (col, r, layout)


@pytest.mark.parametrize("layout, max_len, truncate", [
    ("offsets", None, False),
    ("jagged", None, False),
    ("padded", None, False),
    ("padded", 4, True),
])
def test_values_equal_source(ragged_ds, layout, max_len, truncate):
    path, table = ragged_ds
    loader = mt.Loader(path, 16, columns=["id"] + RAGGED_COLS, ragged={c: layout for c in RAGGED_COLS},
                       max_len=max_len, truncate=truncate, pad_value=-7, null_policy=0.0,
                       shuffle=True, seed=3)
    seen = []
    for batch in loader:
        check_batch(batch, table, layout, cut=max_len if truncate else None)
        if layout == "padded":
            b = batch["l_i32"]
            if max_len is not None:
                assert b.shape == (16, max_len)
            else:
                assert b.shape[1] == max(len(expected(table, "l_i32", r)) for r in batch["id"].tolist())
            assert (b[~batch["l_i32_mask"]] == -7).all()
            assert batch["nest"].shape[2] == D
        if layout == "jagged":
            assert batch["nest"].values().shape[1] == D
        seen += batch["id"].tolist()
    assert sorted(seen) == list(range(N))
    loader.close()


def test_null_rows_error_names_column_and_row(ragged_ds):
    path, _ = ragged_ds
    for col in ["l_i32", "s", "nest", "lb"]:
        loader = mt.Loader(path, 16, columns=["id", col], ragged={col: "offsets"}, shuffle=False)
        with pytest.raises(ValueError, match=rf"{col}.*row 5|row 5.*{col}"):
            list(loader)


def test_padded_too_long_names_column_and_row(ragged_ds):
    path, _ = ragged_ds
    loader = mt.Loader(path, 8, columns=["l_i64"], ragged={"l_i64": "padded"}, max_len=3,
                       null_policy=0, shuffle=False)
    # Row 1 holds 7 items.
    with pytest.raises(ValueError, match=r"l_i64.*7 items at dataset row 1.*max_len=3"):
        next(iter(loader))


def test_shuffled_multi_rank_no_drop_and_pipeline(ragged_ds):
    path, table = ragged_ds
    cols = ["id", "l_f32", "s", "nest"]
    seen = []
    for rank in range(2):
        loader = mt.Loader(path, 14, columns=cols, ragged={"l_f32": "jagged", "s": "offsets",
                                                           "nest": "padded"},
                           null_policy=0, shuffle=True, seed=9, drop_last=False,
                           rank=rank, world_size=2, _pipeline=rank == 1)
        for batch in loader:
            ids = batch["id"].tolist()
            assert [t.tolist() for t in batch["l_f32"].unbind()] == [
                expected(table, "l_f32", r) for r in ids]
            assert mt.decode_strings(batch["s"]) == [
                table.column("s")[r].as_py() or "" for r in ids]
            assert rows_of(batch, "nest", "padded") == [expected(table, "nest", r) for r in ids]
            seen += ids
    assert set(seen) == set(range(N)) and len(seen) >= N


def test_held_batches_never_overwritten_while_ring_grows(tmp_path):
    # Most rows are short, a few are huge: batches differ in total size by
    # 100x, so slots spill and grow while earlier batches are still held.
    lengths = [2000 if r % 37 == 0 else r % 5 for r in range(300)]
    table = pa.table({
        "id": pa.array(np.arange(300), pa.int64()),
        "ids": pa.array([[r * 3 + k for k in range(n)] for r, n in enumerate(lengths)],
                        pa.list_(pa.int64())),
        "t": pa.array(["x" * n + str(r) for r, n in enumerate(lengths)]),
    })
    path = tmp_path / "grow.mosaicrs"
    mosaicrs.write(table, path, batch_rows=64)
    loader = mt.Loader(path, 6, columns=["id", "ids", "t"],
                       ragged={"ids": "offsets", "t": "offsets"}, shuffle=True, seed=1,
                       drop_last=False)
    for epoch in range(2):
        loader.set_epoch(epoch)
        held = list(loader)  # every batch kept alive
        for batch in held:
            ids = batch["id"].tolist()
            o = batch["ids"].offsets.tolist()
            got = [batch["ids"].values[a:b].tolist() for a, b in zip(o[:-1], o[1:])]
            assert got == [table.column("ids")[r].as_py() for r in ids]
            assert mt.decode_strings(batch["t"]) == [table.column("t")[r].as_py() for r in ids]
        del held
    # The values buffers grew (spilled batches were adopted) past their first size.
    assert max(s.tensors[2].numel() for s in loader._slots) >= 2000


def test_state_dict_resume(ragged_ds):
    path, table = ragged_ds
    kw = dict(columns=["id", "l_i16", "b"], ragged={"l_i16": "offsets", "b": "jagged"},
              null_policy=0, shuffle=True, seed=4)
    full = [b["id"].tolist() for b in mt.Loader(path, 10, **kw)]
    first = mt.Loader(path, 10, **kw)
    it = iter(first)
    head = [next(it)["id"].tolist() for _ in range(5)]
    state = first.state_dict()
    first.close()
    resumed = mt.Loader(path, 10, **kw)
    resumed.load_state_dict(state)
    tail = []
    for batch in resumed:
        check = rows_of(batch, "l_i16", "offsets")
        assert check == [expected(table, "l_i16", r) for r in batch["id"].tolist()]
        tail.append(batch["id"].tolist())
    assert head + tail == full


def test_concat_ragged_feeds_embedding_bag():
    a = mt.Ragged(torch.tensor([1, 2, 3]), torch.tensor([0, 2, 3]))
    b = mt.Ragged(torch.tensor([0, 4]), torch.tensor([0, 0, 2]))
    r = mt.concat_ragged([a, b], id_offsets=[0, 10])
    assert r.values.tolist() == [1, 2, 3, 10, 14]
    assert r.offsets.tolist() == [0, 2, 3, 3, 5]
    bag = torch.nn.EmbeddingBag(20, 2, mode="sum")
    pooled = bag(r.values, r.offsets[:-1]).view(2, 2, 2)
    assert torch.allclose(pooled[1, 1], bag.weight[10] + bag.weight[14])
    assert torch.equal(pooled[1, 0], torch.zeros(2))


def test_bad_input_named(ragged_ds, tmp_path):
    path, _ = ragged_ds
    with pytest.raises(ValueError, match="layout 'dense'.*l_i8"):
        mt.Loader(path, 4, columns=["l_i8"], ragged={"l_i8": "dense"})
    with pytest.raises(ValueError, match="id.*not a list, string or binary"):
        mt.Loader(path, 4, columns=["id"], ragged={"id": "offsets"})
    with pytest.raises(ValueError, match="max_len for column 'l_i8'"):
        mt.Loader(path, 4, columns=["l_i8"], ragged={"l_i8": "padded"}, max_len=-1)
    with pytest.raises(ValueError, match="nope"):
        mt.Loader(path, 4, columns=["l_i8"], ragged={"nope": "offsets"})
    with pytest.raises(ValueError, match="ragged="):
        mt.Loader(path, 4, label="id", ragged={"l_i8": "offsets"})
    with pytest.raises(ValueError, match=r"ragged=\{'s': 'offsets'\}"):
        mt.Loader(path, 4, columns=["s"])
    # A list column not named in ragged= is stacked; varying lengths hint at ragged=.
    varying = pa.table({"v": pa.array([[1, 2], [1, 2, 3]], pa.list_(pa.int32()))})
    mosaicrs.write(varying, tmp_path / "varying.mosaicrs")
    with pytest.raises(ValueError, match=r"\"v\".*row 1.*ragged="):
        list(mt.Loader(tmp_path / "varying.mosaicrs", 2, columns=["v"], shuffle=False))
    bad = pa.table({"nest": pa.array([[[1.0, 2.0]], [[1.0, 2.0], [3.0]]],
                                     pa.list_(pa.list_(pa.float64())))})
    p = tmp_path / "bad.mosaicrs"
    mosaicrs.write(bad, p)
    with pytest.raises(ValueError, match=r"nest.*row 1.*1 values.*hold 2"):
        list(mt.Loader(p, 2, columns=["nest"], ragged={"nest": "jagged"}, shuffle=False))


# Lists of lists whose inner lists vary in length (nested=True): null and
# empty lists at both levels, null values, and a few rows of 200 long inner
# lists so that both the values and the inner offsets buffers of the ring grow.
NESTED_N = 120


def _nested_row(r: int) -> Any:
    if r % 13 == 6:
        return None
    big = r % 29 == 0 and r > 0
    lists = 200 if big else r % 4
    return [
        None if (r + k) % 7 == 3 else
        [None if (r + k + v) % 19 == 18 else r * 1000 + k * 10 + v
         for v in range(20 + k % 10 if big else (r * 3 + k) % 6)]
        for k in range(lists)
    ]


@pytest.fixture(scope="module")
def nested_ds(tmp_path_factory) -> Any:
    rows = [_nested_row(r) for r in range(NESTED_N)]
    table = pa.table({
        "id": pa.array(np.arange(NESTED_N), pa.int64()),
        "ni": pa.array(rows, pa.list_(pa.list_(pa.int32()))),
        "nf": pa.array(rows, pa.large_list(pa.list_(pa.float64()))),
    })
    path = tmp_path_factory.mktemp("nested") / "nested.mosaicrs"
    mosaicrs.write(table, path, batch_rows=32)
    return path, table


def nested_expected(table: pa.Table, col: str, r: int, fill: float = 0) -> List[List[Any]]:
    """A row as the loader gives it under a fill policy: null lists empty,
    null values ``fill``."""
    v = table.column(col)[r].as_py() or []
    return [[fill if x is None else x for x in (inner or [])] for inner in v]


@pytest.mark.parametrize("layout, max_len, max_inner, truncate", [
    ("offsets", None, None, False),
    ("padded", None, None, False),
    ("padded", 2, 3, True),
])
def test_nested_lists_equal_source(nested_ds, layout, max_len, max_inner, truncate):
    path, table = nested_ds
    loader = mt.Loader(path, 5, columns=["id", "ni", "nf"], ragged={"ni": layout, "nf": layout},
                       nested=True, max_len=max_len, max_inner_len=max_inner, truncate=truncate,
                       pad_value=-7, null_policy=0, shuffle=True, seed=2, drop_last=False,
                       _pipeline=layout == "padded")
    seen, held = [], []
    for batch in loader:
        held.append(batch)  # held batches must survive the ring's growth
    for batch in held:
        ids = batch["id"].tolist()
        for col, dtype in (("ni", torch.int32), ("nf", torch.float64)):
            want = [nested_expected(table, col, r) for r in ids]
            if truncate:
                want = [[inner[:max_inner] for inner in w[:max_len]] for w in want]
            item = batch[col]
            if layout == "offsets":
                assert isinstance(item, mt.NestedRagged) and item.values.dtype == dtype
                o, io = item.offsets.tolist(), item.inner_offsets.tolist()
                got = [[item.values[io[j]:io[j + 1]].tolist() for j in range(a, b)]
                       for a, b in zip(o[:-1], o[1:])]
                assert got == want, col
                assert item.lengths.tolist() == [len(w) for w in want]
                assert item.inner_lengths.tolist() == [len(x) for w in want for x in w]
                continue
            mask = batch[col + "_mask"]
            assert item.dtype == dtype and mask.shape == item.shape
            b, lists, values = item.shape
            assert lists == (max_len or max(len(w) for w in want))
            assert values == (max_inner or max((len(x) for w in want for x in w), default=0))
            for i, w in enumerate(want):
                for k in range(lists):
                    inner = w[k] if k < len(w) else []
                    assert item[i, k][mask[i, k]].tolist() == inner, (col, ids[i], k)
            assert (item[~mask] == -7).all()
        seen += ids
    assert sorted(seen) == list(range(NESTED_N))
    if layout == "offsets":
        # Both growable buffers of the nested outputs grew past their first size.
        first = 5 * 16
        assert max(s.tensors[2].numel() for s in loader._slots) > first + 1
        assert max(s.tensors[3].numel() for s in loader._slots) > first * 16
    loader.close()


def test_nested_lists_bad_input_named(nested_ds, ragged_ds):
    path, _ = nested_ds
    # Row 2 holds a null inner list.
    with pytest.raises(ValueError, match=r"ni.*row 2"):
        list(mt.Loader(path, 4, columns=["ni"], ragged={"ni": "offsets"}, nested=True,
                       shuffle=False))
    with pytest.raises(ValueError, match=r".ni.*nested lists.*'offsets'.*'padded'"):
        mt.Loader(path, 4, columns=["ni"], ragged={"ni": "jagged"}, nested=True)
    with pytest.raises(ValueError, match=r"max_inner_len for column .ni..*nested"):
        mt.Loader(path, 4, columns=["ni"], ragged={"ni": "offsets"}, max_inner_len=2)
    with pytest.raises(ValueError, match=r"max_inner_len for column 'ni'"):
        mt.Loader(path, 4, columns=["ni"], ragged={"ni": "padded"}, nested=True,
                  max_inner_len=0)
    with pytest.raises(ValueError, match=r"ni.*inner list of \d values at dataset row \d+.*"
                                         r"max_inner_len=1.*truncate=True"):
        list(mt.Loader(path, 4, columns=["ni"], ragged={"ni": "padded"}, nested=True,
                       max_inner_len=1, null_policy=0, shuffle=False))
    # Without nested=, varying inner lists are named with the option to use.
    with pytest.raises(ValueError, match=r"ni.*row \d+.*nested=True"):
        list(mt.Loader(path, 4, columns=["ni"], ragged={"ni": "offsets"}, null_policy=0,
                       shuffle=False))
    flat_path, _ = ragged_ds
    with pytest.raises(ValueError, match=r"l_i8.*list of lists"):
        mt.Loader(flat_path, 4, columns=["l_i8"], ragged={"l_i8": "offsets"}, nested=True)


@pytest.mark.parametrize("pipeline", [False, True])
def test_batches_kept_through_a_storage_or_a_weak_reference_keep_their_values(ragged_ds,
                                                                               pipeline):
    """Holding only a batch tensor's ``untyped_storage()`` keeps the batch from
    being refilled, and a weak reference never gives back a refilled batch."""
    from .conftest import assert_kept, assert_ring_reused, keep_loosely

    path, _ = ragged_ds
    loader = mt.Loader(path, 8, columns=["id", "l_i32", "s"],
                       ragged={"l_i32": "offsets", "s": "padded"}, null_policy=0, seed=2,
                       _pipeline=pipeline)
    kept: List[Any] = []
    for k, batch in enumerate(loader):
        for t in (batch["id"], batch["l_i32"].values, batch["l_i32"].offsets, batch["s"]):
            keep_loosely(t, kept, weak=k % 2 == 1)
        del batch, t
    assert len(kept) == 4 * (N // 8)
    assert_kept(kept)
    assert_ring_reused(loader, kept)
