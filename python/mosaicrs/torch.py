"""PyTorch loading on the Rust engine.

Replace a PyTorch loader in three lines::

    import mosaicrs.torch
    loader = mosaicrs.torch.Loader("train.mosaicrs", batch_size=256, label="label",
                                   shuffle=True, seed=0)
    for inputs, labels in loader:      # torch tensors
        ...

Rust threads gather, shuffle and assemble the batches straight into tensors
that this module allocated once (pinned when the target is CUDA) and reuses
as a ring: nothing on the hot path runs in Python, and there are no worker
processes, no pickling and no shared-memory files. A batch that you still
hold (or a view of it, or a numpy array over it) is never overwritten: its
slot is reused only once nothing references it, and a fresh slot is
allocated when all are held.

Keep ``torch.utils.data.DataLoader(num_workers=0)`` if you wrap
:class:`IterableDataset`: the Rust threads are the workers.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import pyarrow as pa

try:
    import torch
    import torch.utils.data
except ImportError as exc:
    # The wheel does not depend on torch (the Arrow parts work without it).
    raise ImportError(
        "mosaicrs.torch needs PyTorch, which is not installed: "
        "pip install torch (or pip install 'mosaicrs[torch]')"
    ) from exc

from . import _native
from ._native import Dataset
from .exceptions import ColumnNotFoundError, InvalidInputError
from .mix import Stream

__all__ = ["Loader", "IterableDataset", "resolve_rank_world"]

_DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "int64": torch.int64,
    "int32": torch.int32,
    "int16": torch.int16,
    "int8": torch.int8,
    "uint8": torch.uint8,
    "bool": torch.bool,
}
_DTYPE_NAMES = {v: k for k, v in _DTYPES.items()}

_FEATURES = "__features__"

_use_count = getattr(torch._C, "_storage_Use_Count", None)


def resolve_rank_world(rank: Optional[int], world_size: Optional[int]) -> Tuple[int, int]:
    """Rank and world size: the arguments, else ``torch.distributed`` when it is
    initialized, else ``RANK`` / ``WORLD_SIZE`` (torchrun), else ``(0, 1)``."""
    if rank is not None or world_size is not None:
        if rank is None or world_size is None:
            raise InvalidInputError("pass both rank and world_size, or neither")
        return int(rank), int(world_size)
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    if "RANK" in os.environ or "WORLD_SIZE" in os.environ:
        try:
            return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
        except ValueError as e:
            raise InvalidInputError(f"RANK / WORLD_SIZE in the environment are not integers: {e}") from None
    return 0, 1


def _numeric(t: pa.DataType) -> bool:
    return (
        pa.types.is_integer(t)
        or pa.types.is_floating(t) and not pa.types.is_float16(t)
        or pa.types.is_boolean(t)
        or pa.types.is_date(t)
        or pa.types.is_timestamp(t)
    )


def _numeric_or_list(t: pa.DataType) -> bool:
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return _numeric(t.value_type)
    return _numeric(t)


def _null_fill(null_policy: Any) -> Optional[float]:
    if null_policy is None or null_policy == "error":
        return None
    if isinstance(null_policy, (int, float)) and not isinstance(null_policy, bool):
        return float(null_policy)
    if isinstance(null_policy, tuple) and len(null_policy) == 2 and null_policy[0] == "fill":
        return float(null_policy[1])
    raise InvalidInputError(
        f"null_policy {null_policy!r} is not 'error' or a fill value (a number, or ('fill', x))"
    )


def _byte_size(value: Union[int, str, None], name: str) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, int) and value > 0:
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        for suffix, shift in (("gib", 30), ("gb", 30), ("g", 30), ("mib", 20), ("mb", 20),
                              ("m", 20), ("kib", 10), ("kb", 10), ("k", 10), ("b", 0), ("", 0)):
            if text.endswith(suffix) and text[: len(text) - len(suffix)].isdigit():
                return int(text[: len(text) - len(suffix)]) << shift
    raise InvalidInputError(f"{name} {value!r} is not a positive byte count (e.g. 10737418240 or '10g')")


class _Done:
    """An event that has already happened (the CPU stand-in for a CUDA event)."""

    def query(self) -> bool:
        return True


class _Slot:
    """One batch's buffers: torch tensors owned by Python, filled by Rust."""

    __slots__ = ("id", "tensors", "storages", "held", "event")

    def __init__(self, id: int, tensors: List[torch.Tensor]):
        self.id = id
        self.tensors = tensors
        # (storage handle, use count with only the ring's own tensor). The
        # handle stays valid as long as `tensors` keeps the storage alive.
        self.storages = [
            (c, _use_count(c)) for c in (t.untyped_storage()._cdata for t in tensors)
        ] if _use_count is not None else []
        self.held = False  # handed to the user (or being copied to the device)
        self.event: Optional[Any] = None  # CUDA event of the copy out of this slot

    def referenced(self) -> bool:
        if self.event is not None:
            if not self.event.query():
                return True
            self.event = None
        if _use_count is None:
            return True  # cannot tell: never reuse (fresh slots instead)
        for c, baseline in self.storages:
            if _use_count(c) != baseline:
                return True
        return False


class Loader:
    """Shuffled, partitioned, resumable batches of a mosaicrs dataset as torch
    tensors, assembled by Rust threads.

    ``features``: numeric (or fixed-width list) columns stacked into one
    ``[B, F]`` tensor of ``dtype``; default all numeric columns but the label.
    ``label``: with it, iterating yields ``(features, labels)``; without it, a
    dict of column name to tensor (``columns``, default every numeric column).
    ``shuffle``: ``True`` (a global shuffle), ``False`` (dataset order), or
    ``"global"``, ``"block-local:K"``, ``"sequential"``. The sample order
    depends on ``(seed, epoch, dataset)`` only, as in the Rust loader.
    ``drop_last``: drop the samples that do not fill a last global batch, or
    (``False``) pad it with samples from the start of the order.
    ``rank`` / ``world_size``: see :func:`resolve_rank_world`; every rank gets
    the same number of batches, disjoint samples.
    ``device``: where the tensors go (default CPU). With CUDA the ring is in
    pinned memory and each batch is copied without blocking on a side stream
    while the previous step runs. ``pin_memory`` defaults to ``True`` for CUDA.
    ``num_threads`` / ``prefetch``: Rust worker threads and batches assembled
    ahead. ``path`` may be an object-store URL (``s3://bucket/prefix``...)
    with ``storage_options``; its shards are downloaded into the trainer-side
    cache ``cache_dir`` (at most ``cache_limit`` bytes, e.g. ``"20g"``) and
    mapped from there: all at once when the dataset fits in the cache, else a
    block of shards at a time as the epoch reaches them (streamed; a global
    shuffle needs the whole dataset, so stream with
    ``shuffle="block-local:K"``; a cache too small for the shuffle is refused
    with the size it needs: ``mosaicrs.exceptions.CacheTooSmallError``). Local
    datasets are mapped in place. ``path`` may also be a
    :class:`mosaicrs.Dataset` already open (opened the same way; then
    ``storage_options`` and the cache arguments are its own).
    ``null_policy``: ``"error"`` (a ``ValueError`` naming the column and row)
    or a fill value. ``rows``: the dataset rows an epoch covers (strictly
    increasing; for example a training split), all by default.

    ``streams``: instead of ``path``, a list of :class:`mosaicrs.Stream`
    (each a path or URL with its ``weight``, ``repeat`` or ``choose`` and its
    own ``storage_options``) mixed in one loader: every whole global batch
    holds each source's share to within one sample (docs/LOADER.md,
    "Mixing"). ``epoch_size``: samples per epoch with weights (default all
    rows); ``exhausted``: ``"cycle"`` (a source whose share exceeds its rows
    starts over in a fresh permutation) or ``"stop"`` (the epoch ends when
    the first source runs out). ``stream_index=True`` adds a ``"stream"``
    int64 tensor to dict batches: each sample's index in ``streams``.

    ``state_dict()`` / ``load_state_dict()`` resume exactly mid-epoch, also on
    another world size (torchdata's ``Stateful`` protocol).
    """

    def __init__(
        self,
        path: Union[str, "os.PathLike[str]", Dataset, None] = None,
        batch_size: Optional[int] = None,
        *,
        features: Optional[Sequence[str]] = None,
        label: Optional[str] = None,
        columns: Optional[Sequence[str]] = None,
        shuffle: Union[bool, str] = True,
        seed: int = 0,
        drop_last: bool = True,
        rank: Optional[int] = None,
        world_size: Optional[int] = None,
        device: Union[str, torch.device, None] = None,
        pin_memory: Optional[bool] = None,
        num_threads: Optional[int] = None,
        prefetch: Optional[int] = None,
        cache_dir: Union[str, "os.PathLike[str]", None] = None,
        cache_limit: Union[int, str, None] = None,
        null_policy: Any = "error",
        dtype: torch.dtype = torch.float32,
        rows: Optional[Sequence[int]] = None,
        storage_options: Optional[Mapping[str, str]] = None,
        streams: Optional[Sequence[Stream]] = None,
        epoch_size: Optional[int] = None,
        exhausted: str = "cycle",
        stream_index: bool = False,
        _pipeline: Optional[bool] = None,
    ) -> None:
        self._native: Optional[_native.NativeLoader] = None
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidInputError(f"batch_size must be a positive integer, got {batch_size!r}")
        if cache_dir is not None:
            os.fspath(cache_dir)  # TypeError for a non-path
        self.cache_dir = cache_dir
        self.cache_limit = _byte_size(cache_limit, "cache_limit")
        mix: Optional[List[Tuple[Dataset, str, float, Optional[str]]]] = None
        if streams is not None:
            if path is not None:
                raise InvalidInputError("pass path or streams=, not both")
            if not streams or not all(isinstance(s, Stream) for s in streams):
                raise InvalidInputError("streams must be a non-empty list of mosaicrs.Stream")
            mix = [
                (
                    Dataset(s.path, s.storage_options, cache_dir=cache_dir, cache_limit=self.cache_limit),
                    *s.weighting(),
                    s.shuffle,
                )
                for s in streams
            ]
            dataset = mix[0][0]
        elif path is None:
            raise InvalidInputError("pass a dataset path or streams=")
        elif isinstance(path, Dataset):
            dataset = path
        else:
            # Mapped in place, downloaded whole into the cache, or (larger
            # than cache_limit) streamed through it a block of shards at a time.
            dataset = Dataset(
                path, storage_options, cache_dir=cache_dir, cache_limit=self.cache_limit
            )
        self.dataset = dataset
        schema = dataset.schema
        names = schema.names
        if dtype not in _DTYPE_NAMES:
            raise InvalidInputError(f"dtype {dtype} is not one of {sorted(_DTYPES)}")
        if isinstance(shuffle, bool):
            shuffle_mode = "global" if shuffle else "sequential"
        elif isinstance(shuffle, str):
            shuffle_mode = shuffle
        else:
            raise InvalidInputError(f"shuffle must be a bool or a mode name, got {shuffle!r}")
        self.label = label
        self.stream_index = bool(stream_index)
        if self.stream_index and label is not None:
            raise InvalidInputError("stream_index=True adds to dict batches; it cannot be used with label=")
        if (epoch_size is not None or exhausted != "cycle") and streams is None:
            raise InvalidInputError("epoch_size= and exhausted= apply to a mix (streams=)")
        if label is not None:
            if label not in names:
                raise ColumnNotFoundError(f"label column {label!r} not found; available columns: {', '.join(names)}")
            if features is None:
                features = [
                    f.name for f in schema if f.name != label and _numeric_or_list(f.type)
                ]
                if not features:
                    raise InvalidInputError(f"the dataset has no numeric columns besides the label {label!r}")
            stacked, own = list(features), [label]
            if columns is not None:
                raise InvalidInputError("columns= is for dict batches; with label= use features=")
        else:
            if features is not None and columns is not None:
                raise InvalidInputError("pass features= or columns=, not both, when there is no label")
            chosen = columns if columns is not None else features
            if chosen is None:
                chosen = [f.name for f in schema if _numeric_or_list(f.type)]
            stacked, own = [], list(chosen)
        rank_, world = resolve_rank_world(rank, world_size)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self._cuda = self.device.type == "cuda"
        if self._cuda and not torch.cuda.is_available():
            raise InvalidInputError(f"device {self.device} was asked for but CUDA is not available")
        self.pin_memory = bool(pin_memory) if pin_memory is not None else self._cuda
        self._native = _native.NativeLoader(
            dataset,
            batch_size,
            features=stacked,
            columns=own,
            feature_dtype=_DTYPE_NAMES[dtype],
            shuffle=shuffle_mode,
            seed=int(seed),
            drop_last=bool(drop_last),
            rank=rank_,
            world_size=world,
            workers=num_threads,
            prefetch=prefetch,
            null_fill=_null_fill(null_policy),
            rows=None if rows is None else [int(r) for r in rows],
            mix=mix,
            epoch_size=None if epoch_size is None else int(epoch_size),
            exhausted=exhausted,
        )
        self._outputs = self._native.outputs()
        self._slots: List[_Slot] = []
        # Slots handed out (or being copied out) and not yet released, oldest first.
        self._held: List[_Slot] = []
        # Slots the Rust side may hold at once: being filled, queued, prefetched.
        self._ring = self._native.ring
        self._stream = torch.cuda.Stream(device=self.device) if self._cuda else None
        # Device copies one batch ahead; `_pipeline=True` runs the same path on
        # the CPU (with copies) so that CI without a GPU covers it.
        self._pipelined = self._cuda if _pipeline is None else bool(_pipeline)
        self._make = self._batch_maker()
        # State of the last batch handed to the user when the CUDA path has
        # fetched one batch ahead of it.
        self._delivered_state: Optional[str] = None

    # -- properties -------------------------------------------------------
    @property
    def batch_size(self) -> int:
        return self._live().batch_size

    @property
    def rank(self) -> int:
        return self._live().rank

    @property
    def world_size(self) -> int:
        return self._live().world_size

    @property
    def epoch(self) -> int:
        return json.loads(self._state_json())["epoch"]

    @property
    def num_threads(self) -> int:
        return self._live().workers

    @property
    def last_rows(self) -> List[int]:
        """Dataset rows of the last batch that the Rust side delivered."""
        return self._live().last_rows()

    def __len__(self) -> int:
        """Batches per epoch for this rank."""
        return self._live().steps_per_epoch()

    def order(self, epoch: int) -> List[int]:
        """The dataset rows of ``epoch`` in global order (every rank's)."""
        return self._live().order(epoch)

    # -- state ----------------------------------------------------------------
    def _state_json(self) -> str:
        native = self._live()
        return self._delivered_state if self._delivered_state is not None else native.state_json()

    def state_dict(self) -> Dict[str, Any]:
        """The position after the last batch handed out: a small JSON-able dict."""
        return json.loads(self._state_json())

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Continues from ``state_dict`` (same dataset, seed and shuffle; any
        world size or batch size). ``ValueError`` for a state of another
        dataset or seed."""
        if not isinstance(state_dict, Mapping):
            raise InvalidInputError("load_state_dict expects the dict returned by state_dict()")
        self._live().load_state_json(json.dumps(dict(state_dict)))
        self._delivered_state = None

    def set_epoch(self, epoch: int) -> None:
        """Moves to the start of ``epoch`` (kept mid-epoch if already in it)."""
        self._sync_state()
        self._live().set_epoch(int(epoch))

    def _sync_state(self) -> None:
        """Puts the Rust side back to the last handed-out batch (the CUDA path
        reads one batch ahead)."""
        if self._delivered_state is not None:
            state, self._delivered_state = self._delivered_state, None
            self._live().load_state_json(state)

    # -- slots ------------------------------------------------------------------
    def _live(self) -> _native.NativeLoader:
        if self._native is None or self._native.closed:
            raise RuntimeError("the loader is closed; create a new mosaicrs.torch.Loader")
        return self._native

    def _new_slot(self) -> _Slot:
        native = self._live()
        b = native.batch_size
        tensors = []
        for _name, dtype, width in self._outputs:
            shape = (b,) if width is None else (b, width)
            # zeros, not empty: a bool buffer must hold valid bools before Rust views it.
            t = torch.zeros(shape, dtype=_DTYPES[dtype], pin_memory=self.pin_memory)
            tensors.append(t)
        sid = native.add_slot([(t.data_ptr(), t.numel() * t.element_size()) for t in tensors])
        slot = _Slot(sid, tensors)
        self._slots.append(slot)
        return slot

    def _reclaim(self, release: bool = True) -> Optional[int]:
        """Hands back held slots that nothing references any more, and
        allocates fresh slots so that the Rust side always has ``_ring`` to
        fill. Returns the id of one slot to release (not yet handed back,
        for ``next(release=...)``) when ``release`` is False."""
        held = self._held
        keep = None
        i = 0
        while i < len(held):
            s = held[i]
            if s.referenced():
                i += 1
                continue
            del held[i]
            s.held = False
            if release or keep is not None:
                self._live().release_slot(s.id)
            else:
                keep = s.id
        while len(self._slots) - len(held) < self._ring:
            self._new_slot()
        return keep

    def _take(self, sid: int) -> _Slot:
        slot = self._slots[sid]
        slot.held = True
        self._held.append(slot)
        return slot

    # -- iteration ---------------------------------------------------------------
    def _batch_maker(self) -> Any:
        """The function that turns a slot's tensors into what the user gets.

        Each batch gets fresh tensor objects over the slot's storage
        (``detach()``: the cheapest alias torch has), never the ring's own:
        holding one shows in the storage's use count, and whatever the user
        does to the handed-out tensors (``unsqueeze_``, ``requires_grad_``)
        cannot leak into later batches.
        """
        names = [name for name, _d, _w in self._outputs]
        if self.label is None:
            if self.stream_index and not self._pipelined:
                native = self._live()

                def with_stream(tensors: List[torch.Tensor]) -> Dict[str, torch.Tensor]:
                    out = {n: t.detach() for n, t in zip(names, tensors)}
                    out["stream"] = torch.tensor(native.last_sources(), dtype=torch.int64)
                    return out
                return with_stream

            def as_dict(tensors: List[torch.Tensor]) -> Dict[str, torch.Tensor]:
                return {n: t.detach() for n, t in zip(names, tensors)}
            return as_dict
        li = names.index(self.label)
        # The stacked features first, then list features (embeddings), which
        # are their own [B, D] arrays of the same dtype.
        parts = [i for i, n in enumerate(names) if n == _FEATURES]
        parts += [i for i, n in enumerate(names) if n not in (_FEATURES, self.label)]
        if len(parts) == 1:
            fi = parts[0]

            def pair(tensors: List[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
                return tensors[fi].detach(), tensors[li].detach()
            return pair

        def concatenated(tensors: List[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
            return torch.cat([tensors[i] for i in parts], dim=1), tensors[li].detach()
        return concatenated

    def _assemble(self, tensors: List[torch.Tensor]) -> Any:
        return self._make(tensors)

    def __iter__(self) -> Iterator[Any]:
        native = self._live()
        self._sync_state()
        self._reclaim()
        native.start()
        if self._pipelined:
            yield from self._iter_pipelined(native)
            return
        if _use_count is None:
            # Cannot tell whether a batch is still held: fresh slots throughout.
            while True:
                sid = native.next(self._reclaim(False))
                if sid is None:
                    return
                yield self._make(self._take(sid).tensors)
        # The hot loop, `_reclaim` and `_take` written out (a Python call
        # costs about as much as the checks): per batch, a use-count check of
        # the slots handed out, one native call (which releases the slot that
        # came free and waits for the next batch with the GIL released) and
        # fresh tensors for the user.
        held, slots, ring, make = self._held, self._slots, self._ring, self._make
        next_, release_slot, use_count = native.next, native.release_slot, _use_count
        while True:
            release = None
            i = 0
            while i < len(held):
                s = held[i]
                for c, baseline in s.storages:
                    if use_count(c) != baseline:
                        i += 1
                        break
                else:
                    del held[i]
                    s.held = False
                    if release is None:
                        release = s.id
                    else:
                        release_slot(s.id)
            if len(slots) - len(held) < ring:
                self._reclaim()
            sid = next_(release)
            if sid is None:
                return
            s = slots[sid]
            s.held = True
            held.append(s)
            yield make(s.tensors)

    def _copy_out(self, slot: _Slot) -> Tuple[List[torch.Tensor], Any]:
        """Starts copying a slot to the target device; returns the copies and
        an event that completes when the slot may be reused."""
        if self._cuda:
            with torch.cuda.stream(self._stream):
                out = [t.to(self.device, non_blocking=True) for t in slot.tensors]
                event = torch.cuda.Event()
                event.record(self._stream)
            return out, event
        # The same pipeline on the CPU (tests): a copy that is done at once.
        return [t.clone() for t in slot.tensors], _Done()

    def _hand_over(self, out: List[torch.Tensor], event: Any) -> None:
        """Makes the consumer's stream wait for the copy, not the host."""
        if self._cuda:
            current = torch.cuda.current_stream(self.device)
            current.wait_event(event)
            for t in out:
                t.record_stream(current)

    def _iter_pipelined(self, native: _native.NativeLoader) -> Iterator[Any]:
        """Copies batch N+1 to the device while the step on batch N runs."""
        pending = None  # (copies, event, state after that batch)
        while True:
            got = native.next(self._reclaim(False))
            ready = None
            if got is not None:
                slot = self._take(got)
                state = native.state_json()
                sources = native.last_sources() if self.stream_index else None
                out, event = self._copy_out(slot)
                slot.event = event
                ready = (out, event, state, sources)
            if pending is not None:
                out, event, state, sources = pending
                self._hand_over(out, event)
                # The Rust side is one batch ahead of what the user has seen.
                self._delivered_state = state if ready is not None else None
                batch = self._assemble(out)
                if sources is not None:
                    batch["stream"] = torch.tensor(sources, dtype=torch.int64).to(self.device)
                yield batch
            if ready is None:
                self._delivered_state = None
                return
            pending = ready

    def close(self) -> None:
        """Stops the Rust threads; later use raises ``RuntimeError``."""
        native = self._native
        if native is not None and not native.closed:
            native.close()
        self._slots = []
        self._held = []

    def __enter__(self) -> "Loader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __getstate__(self) -> Any:
        raise TypeError(
            "a mosaicrs.torch.Loader cannot be pickled (it owns Rust threads and torch buffers); "
            "create it in the process that iterates it, and keep DataLoader num_workers=0"
        )


_WORKER_MESSAGE = (
    "mosaicrs.torch.IterableDataset loads on its own Rust threads and must not run inside "
    "DataLoader worker processes: use torch.utils.data.DataLoader(ds, batch_size=None, "
    "num_workers=0) (raise the loader's num_threads= for more parallelism)"
)


class IterableDataset(torch.utils.data.IterableDataset):
    """A :class:`Loader` for code that keeps ``DataLoader(ds, batch_size=None)``.

    Takes the same arguments as :class:`Loader`; each item is a whole batch.
    Use ``num_workers=0``: worker processes would each read the whole epoch,
    so they are refused with a message that says so.
    """

    def __init__(
        self,
        path: Union[str, "os.PathLike[str]", Dataset, None] = None,
        batch_size: Optional[int] = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self._path = path
        self._batch_size = batch_size
        self._kwargs = kwargs
        self._loader: Optional[Loader] = None
        self._pending_state: Optional[Dict[str, Any]] = None
        self._pending_epoch: Optional[int] = None

    def _get(self) -> Loader:
        info = torch.utils.data.get_worker_info()
        if info is not None:
            raise RuntimeError(_WORKER_MESSAGE)
        if self._loader is None:
            self._loader = Loader(self._path, self._batch_size, **self._kwargs)
            if self._pending_state is not None:
                self._loader.load_state_dict(self._pending_state)
            if self._pending_epoch is not None:
                self._loader.set_epoch(self._pending_epoch)
        return self._loader

    def __iter__(self) -> Iterator[Any]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())

    def set_epoch(self, epoch: int) -> None:
        if self._loader is None:
            self._pending_epoch = epoch
        else:
            self._loader.set_epoch(epoch)

    def state_dict(self) -> Dict[str, Any]:
        if self._loader is None and self._pending_state is not None:
            return dict(self._pending_state)
        return self._get().state_dict()

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        if self._loader is None:
            self._pending_state = dict(state_dict)
        else:
            self._loader.load_state_dict(state_dict)

    def close(self) -> None:
        if self._loader is not None:
            self._loader.close()

    def __getstate__(self) -> Dict[str, Any]:
        # Sent to spawned DataLoader workers: without the live loader, which
        # then refuse to run with _WORKER_MESSAGE.
        state = dict(self.__dict__)
        state["_loader"] = None
        return state
