"""mosaicrs.torch.Loader: values, coverage, resume, ranks, the ring of
buffers, errors. Mirrors rust-core/tests/loader_*.rs."""

import json

import numpy as np
import pyarrow as pa
import pytest

torch = pytest.importorskip("torch")

import mosaicrs  # noqa: E402
import mosaicrs.torch as mt  # noqa: E402

from .conftest import digits_like  # noqa: E402

NATURAL = {
    "id": torch.int64, "i8": torch.int8, "i16": torch.int16, "i32": torch.int32,
    "u8": torch.uint8, "u16": torch.int32, "u32": torch.int64, "u64": torch.int64,
    "f32": torch.float32, "f64": torch.float64, "flag": torch.bool,
    "day": torch.int32, "ts": torch.int64,
}


def source_values(table, column, rows):
    col = table.column(column).take(pa.array(rows))
    if pa.types.is_date32(col.type):
        col = col.cast(pa.int32())
    elif pa.types.is_timestamp(col.type):
        col = col.cast(pa.int64())
    if pa.types.is_list(col.type):
        return np.array(col.to_pylist(), dtype=np.float32)
    return col.to_numpy(zero_copy_only=False)


def test_every_type_equals_the_source(types_dataset):
    path, table = types_dataset
    loader = mt.Loader(path, 64, seed=3, num_threads=2)  # dict batches, every numeric column
    seen = 0
    for batch in loader:
        rows = loader.last_rows
        assert set(batch) == set(NATURAL) | {"emb"}
        for name, dtype in NATURAL.items():
            t = batch[name]
            assert t.dtype == dtype and t.shape == (64,), name
            np.testing.assert_array_equal(t.numpy(), source_values(table, name, rows), err_msg=name)
        assert batch["emb"].shape == (64, 3)
        np.testing.assert_array_equal(batch["emb"].numpy(), source_values(table, "emb", rows))
        seen += 1
    assert seen == len(loader) == 1000 // 64


def test_features_and_label_tuples(types_dataset):
    path, table = types_dataset
    feats = ["f32", "i16", "u8", "flag", "emb"]
    loader = mt.Loader(path, 100, features=feats, label="id", dtype=torch.float64, seed=1)
    for x, y in loader:
        rows = y.numpy()  # id == row
        assert x.dtype == torch.float64 and x.shape == (100, 4 + 3)
        expected = np.column_stack(
            [source_values(table, c, rows).astype(np.float64) for c in feats[:4]]
            + [source_values(table, "emb", rows).astype(np.float64)])
        np.testing.assert_allclose(x.numpy(), expected, rtol=1e-6)
        assert y.dtype == torch.int64


def all_rank_rows(path, world, epoch_batches=None, **kw):
    per_rank = []
    for r in range(world):
        loader = mt.Loader(path, 16, rank=r, world_size=world, seed=5, **kw)
        rows = []
        for batch in loader:
            rows.append(batch["id"].numpy().copy())
        per_rank.append(rows)
    return per_rank


def test_ranks_are_disjoint_cover_the_epoch_with_equal_steps(ids_dataset):
    world = 3
    per_rank = all_rank_rows(ids_dataset, world)
    steps = {len(r) for r in per_rank}
    assert steps == {1000 // (16 * world)}
    seen = np.concatenate([np.concatenate(r) for r in per_rank])
    assert len(seen) == len(set(seen.tolist())) == steps.pop() * 16 * world
    # The same as the Rust order: global batch s is ranks' slices in rank order.
    order = mt.Loader(ids_dataset, 16, seed=5).order(0)
    glob = [np.concatenate([per_rank[r][s] for r in range(world)]) for s in range(len(per_rank[0]))]
    assert np.concatenate(glob).tolist() == order[: len(seen)]


def test_padding_covers_every_sample(ids_dataset):
    per_rank = all_rank_rows(ids_dataset, 3, drop_last=False)
    seen = np.concatenate([np.concatenate(r) for r in per_rank])
    assert set(seen.tolist()) == set(range(1000))
    assert len({len(r) for r in per_rank}) == 1


def test_order_depends_on_seed_and_epoch_only(ids_dataset):
    a = mt.Loader(ids_dataset, 10, seed=9, num_threads=1, prefetch=1)
    b = mt.Loader(ids_dataset, 25, seed=9, num_threads=4, prefetch=16)
    assert a.order(0) == b.order(0) != a.order(1)
    assert sorted(a.order(0)) == list(range(1000))
    assert mt.Loader(ids_dataset, 10, seed=10).order(0) != a.order(0)
    seq = mt.Loader(ids_dataset, 10, shuffle=False)
    assert seq.order(0) == list(range(1000))
    rows = [r for batch in seq for r in batch["id"].tolist()]
    assert rows == list(range(1000))
    block = mt.Loader(ids_dataset, 10, shuffle="block-local:2")
    assert sorted(block.order(0)) == list(range(1000))


def two_epochs(loader):
    out = []
    for _ in range(2):
        for batch in loader:
            out.append((loader.state_dict()["epoch"], batch["id"].tolist()))
    return out


def test_resume_mid_epoch_equals_an_uninterrupted_run(ids_dataset):
    full = two_epochs(mt.Loader(ids_dataset, 32, seed=2))
    first = mt.Loader(ids_dataset, 32, seed=2)
    got = []
    for k, batch in enumerate(first):
        got.append(batch["id"].tolist())
        if k == 6:
            break
    state = first.state_dict()
    json.dumps(state)  # JSON-able
    assert state["samples_consumed"] == 7 * 32
    first.close()
    resumed = mt.Loader(ids_dataset, 32, seed=2)
    resumed.load_state_dict(state)
    resumed.set_epoch(0)  # a resumed loop calling set_epoch keeps its position
    for batch in resumed:
        got.append(batch["id"].tolist())
    for batch in resumed:
        got.append(batch["id"].tolist())
    assert got == [rows for _, rows in full]


def test_resume_on_another_world_size_continues_the_global_order(ids_dataset):
    one = mt.Loader(ids_dataset, 20, seed=4)
    seen = []
    for k, batch in enumerate(one):
        seen.extend(batch["id"].tolist())
        if k == 9:
            break
    state = one.state_dict()
    for r in range(2):
        two = mt.Loader(ids_dataset, 10, seed=4, rank=r, world_size=2)
        two.load_state_dict(state)
        for batch in two:
            seen.extend(batch["id"].tolist())
    assert len(seen) == len(set(seen)) == 1000
    assert sorted(seen[:200]) == sorted(one.order(0)[:200])


def test_a_state_from_another_dataset_or_seed_is_refused(ids_dataset, tmp_path):
    state = mt.Loader(ids_dataset, 8, seed=1).state_dict()
    with pytest.raises(ValueError, match="seed"):
        mt.Loader(ids_dataset, 8, seed=2).load_state_dict(state)
    other = tmp_path / "other"
    mosaicrs.write(digits_like(), other)
    with pytest.raises(ValueError, match="dataset"):
        mt.Loader(other, 8, seed=1).load_state_dict(state)
    with pytest.raises(ValueError, match="shuffle"):
        mt.Loader(ids_dataset, 8, seed=1, shuffle="sequential").load_state_dict(state)


def test_held_batches_are_never_overwritten(ids_dataset):
    loader = mt.Loader(ids_dataset, 10, seed=8, num_threads=2, prefetch=2)
    kept = []
    views = []
    for batch in loader:
        kept.append((batch["id"], batch["x"]))
        views.append(batch["x"][:3].numpy())  # a numpy view of the ring buffer
    ids = torch.cat([k[0] for k in kept])
    assert sorted(ids.tolist()) == list(range(1000))
    for (i, x), v in zip(kept, views):
        assert torch.equal(x, i.double() / 4)
        np.testing.assert_array_equal(v, i[:3].double().numpy() / 4)


def test_slots_are_reused_when_released(ids_dataset):
    loader = mt.Loader(ids_dataset, 10, seed=8, num_threads=2, prefetch=2)
    for _ in range(3):
        for batch in loader:
            pass
    # 300 batches went through a small, bounded ring.
    assert len(loader._slots) <= loader._ring + 2


@pytest.mark.parametrize("native", [True, False])
def test_an_epoch_starts_at_its_first_batch_and_stays_ended(ids_dataset, native):
    """``iter(loader)`` starts the epoch at the first ``next()``, as a generator
    does, so a ``set_epoch`` in between counts; an iterator that ended or failed
    stays ended. The same on the native path and the Python one."""
    loader = mt.Loader(ids_dataset, 10, seed=8)
    if not native:
        loader._dense = None
    it = iter(loader)
    loader.set_epoch(3)
    ids = [b["id"].tolist() for b in it]
    assert ids == [loader.order(3)[k: k + 10] for k in range(0, 1000, 10)]
    assert next(it, None) is None
    assert loader.epoch == 4
    it = iter(loader)
    loader._native.close()
    with pytest.raises(RuntimeError, match="closed"):
        next(it)
    assert next(it, None) is None


@pytest.mark.parametrize("pipeline", [False, True])
def test_an_epoch_stopped_early_gives_back_every_slot(ids_dataset, pipeline):
    """Batches still queued when an epoch stops (a break, load_state_dict,
    set_epoch) must return their slots to the free queue: lost slots starve
    the workers, and the next epoch hangs. Checked right after the stop has
    joined the workers, so the count does not depend on timing."""
    loader = mt.Loader(ids_dataset, 10, seed=8, num_threads=2, prefetch=4, _pipeline=pipeline)
    native = loader._native
    for round in range(12):
        for k, _batch in enumerate(loader):
            if k == round % 3:
                break
        native.stop()
        held = len(loader._held_slots())
        assert native.free_slots() == len(loader._slots) - held, round
    left = len(loader) - loader.state_dict()["samples_consumed"] // 10
    assert sum(1 for _ in loader) == left  # the rest of the epoch, no hang
    assert len(loader._slots) <= loader._ring + 2


def test_a_slot_is_released_once_per_delivery(ids_dataset):
    loader = mt.Loader(ids_dataset, 10, seed=8)
    native = loader._native
    loader._reclaim()
    native.start()
    held = native.next()
    free = next(s.id for s in loader._slots if s.id != held)
    with pytest.raises(ValueError, match="not held"):
        native.release_slot(free)  # two workers would share its buffers
    native.release_slot(held)
    with pytest.raises(ValueError, match="not held"):
        native.release_slot(held)
    native.stop()
    assert sum(1 for _ in loader) == len(loader) - 1


def test_what_a_batch_went_through_never_reaches_a_later_one(ids_dataset):
    """A slot's tensors are reused only untouched and unreferenced: in-place
    changes, requires_grad and attributes stay with the batch they were made
    on, and a batch that autograd saved is not overwritten."""
    loader = mt.Loader(ids_dataset, 10, seed=8, num_threads=2, prefetch=2)
    w = torch.ones(10, dtype=torch.float64, requires_grad=True)
    graphs = []
    for k, batch in enumerate(loader):
        x, ids = batch["x"], batch["id"]
        assert x.shape == (10,) and ids.shape == (10,)
        assert not x.requires_grad and x.grad is None and not hasattr(x, "tag")
        assert torch.equal(x, ids.double() / 4)
        if k % 4 == 0:
            x.unsqueeze_(0)
        elif k % 4 == 1:
            x.requires_grad_()
        elif k % 4 == 2:
            x.tag = k
        if k < 30:
            # mul saves x for w's gradient; only the graph keeps it.
            graphs.append(((x.detach() if x.requires_grad else x) * w).sum())
            graphs.append(ids.clone())
        del x, ids, batch
    for loss, ids in zip(graphs[::2], graphs[1::2]):
        w.grad = None
        loss.backward()
        assert torch.equal(w.grad, ids.double() / 4)


def test_a_batch_held_through_its_storage_is_kept_and_a_reclassed_one_not_reused(ids_dataset):
    """Holding only a batch's ``untyped_storage()`` keeps the batch from being
    overwritten, and a tensor whose class was reassigned is not handed out
    again (the native per-batch path)."""

    class Tagged(torch.Tensor):
        pass

    loader = mt.Loader(ids_dataset, 10, seed=8, num_threads=2, prefetch=2)
    assert loader._dense is not None
    kept = []
    for k, batch in enumerate(loader):
        x = batch["x"]
        assert type(x) is torch.Tensor
        if k % 2:
            x.__class__ = Tagged
        else:
            kept.append((x.untyped_storage(), x.storage_offset(), batch["id"].clone()))
        del x, batch
    assert len(kept) == 50
    for storage, offset, ids in kept:
        x = torch.empty(0, dtype=torch.float64).set_(storage, offset, (10,))
        assert torch.equal(x, ids.double() / 4)


def test_kept_batch_tuples_keep_their_batches(ids_dataset):
    """A ``(x, y)`` batch kept whole (only the tuple referenced) is not
    overwritten either."""
    loader = mt.Loader(ids_dataset, 10, features=["x"], label="id", seed=8, num_threads=2,
                       prefetch=2)
    kept = list(loader)
    assert sorted(torch.cat([y for _, y in kept]).tolist()) == list(range(1000))
    for x, y in kept:
        assert torch.equal(x[:, 0], y.double() / 4)


def test_errors_name_the_problem(types_dataset, tmp_path):
    path, _ = types_dataset
    with pytest.raises(ValueError, match="nope"):
        mt.Loader(path, 8, features=["f32", "nope"], label="id")
    with pytest.raises(ValueError, match="name"):
        mt.Loader(path, 8, features=["f32", "name"], label="id")
    with pytest.raises(ValueError, match="missing_label"):
        mt.Loader(path, 8, label="missing_label")
    with pytest.raises(FileNotFoundError, match="no-such"):
        mt.Loader(tmp_path / "no-such", 8)
    with pytest.raises(ValueError, match="batch_size"):
        mt.Loader(path, 0)
    with pytest.raises(ValueError, match="rank"):
        mt.Loader(path, 8, rank=2, world_size=2)
    with pytest.raises(ValueError, match="aws_colour"):
        mt.Loader("s3://bucket/ds", 8, storage_options={"aws_colour": "blue"})
    with pytest.raises(ValueError, match="cache_limit"):
        mt.Loader(path, 8, cache_limit="lots")
    loader = mt.Loader(path, 8, cache_dir=tmp_path / "cache", cache_limit="1g")
    assert loader.cache_limit == 1 << 30
    loader.close()
    with pytest.raises(RuntimeError, match="closed"):
        iter(loader).__next__()
    with pytest.raises(RuntimeError, match="closed"):
        loader.state_dict()


def test_nulls_are_named_or_filled(tmp_path):
    table = pa.table({"x": pa.array([1.0, 2.0, None, 4.0] * 10), "label": pa.array([0, 1] * 20)})
    path = tmp_path / "nulls"
    mosaicrs.write(table, path)
    loader = mt.Loader(path, 4, label="label", shuffle=False)
    with pytest.raises(ValueError, match=r'"x".*row 2'):
        for _ in loader:
            pass
    filled = mt.Loader(path, 4, label="label", shuffle=False, null_policy=-1.0)
    x, y = next(iter(filled))
    assert x[:, 0].tolist() == [1.0, 2.0, -1.0, 4.0]


def test_row_selection(ids_dataset):
    rows = list(range(0, 1000, 3))
    loader = mt.Loader(ids_dataset, 10, rows=rows, seed=1)
    seen = [r for b in loader for r in b["id"].tolist()]
    assert len(seen) == len(rows) // 10 * 10 and set(seen) <= set(rows)


def test_rank_and_world_from_the_environment(ids_dataset, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "4")
    loader = mt.Loader(ids_dataset, 10)
    assert (loader.rank, loader.world_size) == (1, 4)
    assert len(loader) == 1000 // 40
    assert (mt.Loader(ids_dataset, 10, rank=0, world_size=1).world_size) == 1
    with pytest.raises(ValueError, match="both"):
        mt.Loader(ids_dataset, 10, rank=0)


def test_iterable_dataset_with_a_dataloader(ids_dataset):
    ds = mt.IterableDataset(ids_dataset, 50, seed=3)
    dl = torch.utils.data.DataLoader(ds, batch_size=None)
    seen = [r for b in dl for r in b["id"].tolist()]
    assert sorted(seen) == list(range(1000))
    assert len(dl) == 20
    state = ds.state_dict()
    assert state["epoch"] == 1


def test_torchdata_stateful_dataloader_resumes(ids_dataset):
    tdl = pytest.importorskip("torchdata.stateful_dataloader")
    ds = mt.IterableDataset(ids_dataset, 50, seed=3)
    dl = tdl.StatefulDataLoader(ds, batch_size=None)
    it = iter(dl)
    first = [next(it)["id"].tolist() for _ in range(4)]
    sd = dl.state_dict()
    rest = [b["id"].tolist() for b in it]
    ds2 = mt.IterableDataset(ids_dataset, 50, seed=3)
    dl2 = tdl.StatefulDataLoader(ds2, batch_size=None)
    dl2.load_state_dict(sd)
    assert [b["id"].tolist() for b in dl2] == rest
    assert len(first) == 4


def test_the_device_pipeline_keeps_exact_state(ids_dataset):
    """The CUDA path (copy one batch ahead, state of the batch handed out) run
    on the CPU: same batches, and a break + resume loses nothing."""
    plain = [b["id"].tolist() for b in mt.Loader(ids_dataset, 40, seed=6)]
    piped = mt.Loader(ids_dataset, 40, seed=6, _pipeline=True)
    got = []
    for k, b in enumerate(piped):
        got.append(b["id"].tolist())
        if k == 4:
            break
    assert piped.state_dict()["samples_consumed"] == 5 * 40
    state = piped.state_dict()
    got.extend(b["id"].tolist() for b in piped)  # continues after the break
    assert got == plain
    again = mt.Loader(ids_dataset, 40, seed=6, _pipeline=True)
    again.load_state_dict(state)
    assert [b["id"].tolist() for b in again] == plain[5:]
    assert again.state_dict()["epoch"] == 1


@pytest.mark.parametrize("native", [True, False])
def test_a_weak_reference_never_gives_back_a_refilled_batch(ids_dataset, native):
    """A batch kept only through a weak reference to one of its tensors is
    gone, or still holds its values; the same for one kept through its
    storage (the native per-batch path and the Python one)."""
    from .conftest import assert_kept, assert_ring_reused, keep_loosely

    loader = mt.Loader(ids_dataset, 10, seed=8, num_threads=2, prefetch=2)
    if not native:
        loader._dense = None
    kept: list = []
    for k, batch in enumerate(loader):
        for t in (batch["id"], batch["x"]):
            keep_loosely(t, kept, weak=k % 2 == 1)
        del batch, t
    assert len(kept) == 200
    assert_kept(kept)
    assert_ring_reused(loader, kept)
