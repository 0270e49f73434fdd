"""PyTorch loading on the Rust engine: :class:`Loader` for samples, :class:`TokenLoader`
for documents of tokens packed into sequences.

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
slot is reused only once nothing references it (autograd's saved tensors
included), and a fresh slot is allocated when all are held. Dense batches
come from one native call each, as the same tensor objects each time their
slot comes round; a batch whose tensors you changed (in place, including
``unsqueeze_``, ``requires_grad_``, attributes) gets fresh ones, so nothing
done to one batch reaches another.

Variable-length lists, strings and binary columns come as tensors in the
form named per column by ``ragged=``: ``"offsets"`` (a :class:`Ragged` of
values and int64 offsets), ``"jagged"`` (``torch.nested`` with
``layout=torch.jagged``) or ``"padded"`` (``[B, L]`` plus a ``<col>_mask``);
lists of lists whose inner lists vary in length (``nested=True``) come as a
:class:`NestedRagged` (two levels of offsets) or padded ``[B, L, M]``.
Their values buffers in the ring grow when a batch needs more: the batch is
written to a spill buffer on the Rust side, and on delivery this module
allocates a larger tensor (twice the size, pinned for CUDA) that the spill
is copied into once and that the slot keeps; the batch you get is a view
over it, so a held batch is never overwritten here either.

Keep ``torch.utils.data.DataLoader(num_workers=0)`` if you wrap
:class:`IterableDataset`: the Rust threads are the workers.
"""

from __future__ import annotations

import json
import os
import sys
import weakref
from weakref import getweakrefcount
from typing import (
    Any, Callable, Dict, Generic, Iterator, List, Mapping, NamedTuple, Optional, Sequence, Tuple,
    TypeVar, Union,
)

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
from .exceptions import ColumnNotFoundError, InvalidInputError, VersionNotFoundError
from .mix import Stream

__all__ = [
    "Loader",
    "IterableDataset",
    "TokenLoader",
    "TokenIterableDataset",
    "Ragged",
    "NestedRagged",
    "concat_ragged",
    "decode_strings",
    "resolve_rank_world",
]

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

# Items per sample a ragged values buffer starts with room for (and values per
# inner list of nested lists).
_RAGGED_START_LEN = 16

_use_count = getattr(torch._C, "_storage_Use_Count", None)
# C++ references to a tensor object (an autograd graph that saved it).
_tensor_use_count = getattr(torch.Tensor, "_use_count", None)
if _use_count is None:
    _tensor_use_count = None


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


_LAYOUTS = ("jagged", "offsets", "padded")
# What load_state_dict does with a state of another dataset version: reopen
# that version ("pinned"), or continue on the loader's own ("latest").
_FOLLOW = ("pinned", "latest")

_V = TypeVar("_V")


class Ragged(NamedTuple):
    """A variable-length column of one batch: sample ``i`` is
    ``values[offsets[i]:offsets[i + 1]]``.

    ``values`` is ``[N]`` (``[N, D]`` for a list of ``D``-value lists;
    ``uint8`` bytes for strings and binary), ``offsets`` is int64 ``[B + 1]``
    starting at 0. ``(values, offsets[:-1])`` is what ``nn.EmbeddingBag``
    takes; :func:`concat_ragged` joins several id-list columns for one call.
    """

    values: torch.Tensor
    offsets: torch.Tensor

    @property
    def lengths(self) -> torch.Tensor:
        """Items per sample, int64 ``[B]``."""
        return self.offsets[1:] - self.offsets[:-1]

    @property
    def inner_offsets(self) -> Optional[torch.Tensor]:
        """``None``: one level of offsets (see :class:`NestedRagged`)."""
        return None


class NestedRagged(NamedTuple):
    """A column of lists of lists of any lengths (``nested=True``) in one
    batch: sample ``i`` holds inner lists ``offsets[i]:offsets[i + 1]``, and
    inner list ``j`` is ``values[inner_offsets[j]:inner_offsets[j + 1]]``.

    ``values`` is ``[V]``, ``offsets`` int64 ``[B + 1]`` (into the inner
    lists), ``inner_offsets`` int64 ``[n_lists + 1]`` (into the values), both
    starting at 0. A :class:`Ragged` has ``inner_offsets`` ``None``, so
    ``batch[col].inner_offsets is None`` tells the two apart.

    >>> r = NestedRagged(torch.tensor([1, 2, 3]), torch.tensor([0, 2, 2, 3]),
    ...                  torch.tensor([0, 2, 2, 3]))
    >>> [[r.values[a:b].tolist() for a, b in zip(r.inner_offsets[s:e], r.inner_offsets[s + 1:e + 1])]
    ...  for s, e in zip(r.offsets[:-1].tolist(), r.offsets[1:].tolist())]
    [[[1, 2], []], [], [[3]]]
    """

    values: torch.Tensor
    offsets: torch.Tensor
    inner_offsets: torch.Tensor

    @property
    def lengths(self) -> torch.Tensor:
        """Inner lists per sample, int64 ``[B]``."""
        return self.offsets[1:] - self.offsets[:-1]

    @property
    def inner_lengths(self) -> torch.Tensor:
        """Values per inner list, int64 ``[n_lists]``."""
        return self.inner_offsets[1:] - self.inner_offsets[:-1]


def decode_strings(ragged: Ragged, errors: str = "strict") -> List[str]:
    """The rows of a string column (``Ragged`` of ``uint8`` bytes) as Python
    strings, decoded as UTF-8 (``errors`` as in :meth:`bytes.decode`).

    >>> decode_strings(Ragged(torch.tensor(list(b"hiyo"), dtype=torch.uint8),
    ...                       torch.tensor([0, 2, 2, 4])))
    ['hi', '', 'yo']
    """
    data = ragged.values.detach().cpu().contiguous().numpy().tobytes()
    bounds = ragged.offsets.detach().cpu().tolist()
    return [data[a:b].decode("utf-8", errors) for a, b in zip(bounds[:-1], bounds[1:])]


def concat_ragged(parts: Sequence[Ragged], id_offsets: Optional[Sequence[int]] = None) -> Ragged:
    """Several id-list columns of one batch as one ``(values, offsets)`` for a
    single ``nn.EmbeddingBag`` call (like TorchRec's ``KeyedJaggedTensor``).

    The result holds ``F * B`` bags, feature-major: bag ``f * B + i`` is row
    ``i`` of ``parts[f]``. ``id_offsets[f]``, when given, is added to the ids
    of ``parts[f]`` so that the features share one table without colliding::

        ids = concat_ragged([batch["items"], batch["cats"]], id_offsets=[0, n_items])
        bag = nn.EmbeddingBag(n_items + n_cats, 32, mode="sum")
        pooled = bag(ids.values, ids.offsets[:-1]).view(2, batch_size, 32)
    """
    if not parts:
        raise InvalidInputError("concat_ragged needs at least one Ragged")
    if id_offsets is not None and len(id_offsets) != len(parts):
        raise InvalidInputError(
            f"id_offsets has {len(id_offsets)} entries for {len(parts)} parts"
        )
    values = []
    offsets = [parts[0].offsets[:1]]
    total = 0
    for f, part in enumerate(parts):
        v = part.values
        if id_offsets is not None and id_offsets[f]:
            v = v + int(id_offsets[f])
        values.append(v)
        offsets.append(part.offsets[1:] + total)
        total += int(part.offsets[-1])
    return Ragged(torch.cat(values), torch.cat(offsets))


def _per_column(value: Any, name: str, columns: Sequence[str], check: Any) -> Dict[str, Any]:
    """``value`` for each of ``columns``: one value for all, or a dict by column."""
    if isinstance(value, Mapping):
        unknown = [c for c in value if c not in columns]
        if unknown:
            raise InvalidInputError(
                f"{name} names {unknown}, which are not ragged= columns ({list(columns)})"
            )
        out = {c: check(value.get(c), c) for c in columns}
    else:
        out = {c: check(value, c) for c in columns}
    return out


def _map_tensors(items: List[Any], fn: Any) -> List[Any]:
    """``fn`` applied to each tensor of per-output items (a tensor, or a ragged
    column's ``(values, offsets, pad_len, inner_offsets or None, pad_inner)``)."""
    return [
        (fn(x[0]), fn(x[1]), x[2], None if x[3] is None else fn(x[3]), x[4])
        if isinstance(x, tuple) else fn(x)
        for x in items
    ]


def _nested_entries(
    name: str,
    layout: str,
    values: torch.Tensor,
    offsets: torch.Tensor,
    inner: torch.Tensor,
    pad_len: int,
) -> Dict[str, Any]:
    """The batch entries of a nested-lists column: a :class:`NestedRagged`, or
    padded ``[B, L, M]`` values and their mask (``name + "_mask"``)."""
    inner = inner.detach()
    if layout != "padded":
        return {name: NestedRagged(values, offsets, inner)}
    m = values.shape[2]
    # Inner list k of sample i is list offsets[i] + k, present when k < L_i.
    k = torch.arange(pad_len, device=values.device)
    present = k < (offsets[1:] - offsets[:-1]).unsqueeze(1)
    lists = torch.where(present, offsets[:-1].unsqueeze(1) + k, 0)
    lengths = inner[1:] - inner[:-1]
    inner_len = (
        torch.where(present, lengths[lists], 0) if lengths.numel() else torch.zeros_like(lists)
    )
    mask = torch.arange(m, device=values.device) < inner_len.unsqueeze(-1)
    return {name: values, name + "_mask": mask}


def _open_dataset(
    path: Union[str, "os.PathLike[str]", Dataset],
    storage_options: Optional[Mapping[str, str]],
    cache_dir: Union[str, "os.PathLike[str]", None],
    cache_limit: Optional[int],
    version: Union[int, str, None] = None,
) -> Dataset:
    """``path`` as a :class:`Dataset` (at ``version``, default the newest):
    mapped in place, downloaded whole into the cache, or (larger than
    ``cache_limit``) streamed through it a block of shards at a time. A
    :class:`Dataset` already open is used as it is."""
    if cache_dir is not None:
        os.fspath(cache_dir)  # TypeError for a non-path
    if isinstance(path, Dataset):
        if version is not None:
            raise InvalidInputError(
                "version= applies to a path; open the Dataset at the version instead: "
                "mosaicrs.Dataset(path, version=N)"
            )
        return path
    return Dataset(
        path, storage_options, cache_dir=cache_dir, cache_limit=cache_limit, version=version
    )


_MixArg = List[Tuple[Dataset, str, float, Optional[str]]]


def _open_streams(
    path: Union[str, "os.PathLike[str]", Dataset, None],
    streams: Optional[Sequence[Stream]],
    epoch_size: Optional[int],
    exhausted: str,
    cache_dir: Union[str, "os.PathLike[str]", None],
    cache_limit: Optional[int],
) -> Optional[_MixArg]:
    """The opened sources of a mix (``streams``) as the native loaders take
    them, or ``None`` for one dataset (``path``); checks that exactly one of
    the two is given and that the mix options come with a mix."""
    if streams is None:
        if path is None:
            raise InvalidInputError("pass a dataset path or streams=")
        if epoch_size is not None or exhausted != "cycle":
            raise InvalidInputError("epoch_size= and exhausted= apply to a mix (streams=)")
        return None
    if path is not None:
        raise InvalidInputError("pass path or streams=, not both")
    if not streams or not all(isinstance(s, Stream) for s in streams):
        raise InvalidInputError("streams must be a non-empty list of mosaicrs.Stream")
    return [
        (
            _open_dataset(s.path, s.storage_options, cache_dir, cache_limit),
            *s.weighting(),
            s.shuffle,
        )
        for s in streams
    ]


def _shuffle_mode(shuffle: Union[bool, str]) -> str:
    if isinstance(shuffle, bool):
        return "global" if shuffle else "sequential"
    if isinstance(shuffle, str):
        return shuffle
    raise InvalidInputError(f"shuffle must be a bool or a mode name, got {shuffle!r}")


def _target(
    device: Union[str, torch.device, None], pin_memory: Optional[bool]
) -> Tuple[torch.device, bool]:
    """The target device and whether host buffers are pinned (default: for CUDA)."""
    dev = torch.device(device) if device is not None else torch.device("cpu")
    cuda = dev.type == "cuda"
    if cuda and not torch.cuda.is_available():
        raise InvalidInputError(f"device {dev} was asked for but CUDA is not available")
    return dev, bool(pin_memory) if pin_memory is not None else cuda


class _ToDevice:
    """Copies host batches to the target device: on CUDA without blocking, on
    a side stream, so that the copy of batch N+1 overlaps the step on batch N.
    On the CPU (the tests' stand-in for the same pipeline) a copy done at once."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cuda = device.type == "cuda"
        self.stream = torch.cuda.Stream(device=device) if self.cuda else None

    def start(self, items: Sequence[Any]) -> Tuple[List[Any], Any]:
        """Starts the copies of ``items`` (tensors, or a ragged column's
        ``(values, offsets, pad_len, inner_offsets, pad_inner)``); returns them and an event that
        completes when the host buffers may be reused."""
        if self.cuda:
            with torch.cuda.stream(self.stream):
                out = _map_tensors(list(items), lambda t: t.to(self.device, non_blocking=True))
                event = torch.cuda.Event()
                event.record(self.stream)
            return out, event
        return _map_tensors(list(items), lambda t: t.clone()), _Done()

    def hand_over(self, out: Sequence[Any], event: Any) -> None:
        """Makes the consumer's stream wait for the copy, not the host."""
        if self.cuda:
            current = torch.cuda.current_stream(self.device)
            current.wait_event(event)
            _map_tensors(list(out), lambda t: t.record_stream(current))


class _Done:
    """An event that has already happened (the CPU stand-in for a CUDA event)."""

    def query(self) -> bool:
        return True


class _Slot:
    """One batch's buffers: torch tensors owned by Python, filled by Rust.

    The slot is held while its storages are referenced from outside it:
    through a tensor over them (the storage's use count) or through the
    storage object that ``untyped_storage()`` returns (its reference count:
    torch hands out that same object while it lives, and holding it does
    not show in the use count)."""

    __slots__ = ("id", "tensors", "storages", "held", "event")

    def __init__(self, id: int, tensors: List[torch.Tensor]):
        self.id = id
        self.tensors = tensors
        self.storages: List[Tuple[int, int, Any, int]] = []
        self._baseline()
        self.held = False  # handed to the user (or being copied to the device)
        self.event: Optional[Any] = None  # CUDA event of the copy out of this slot

    def _baseline(self, again: Optional[int] = None) -> None:
        """Per distinct storage of ``tensors``: (handle, use count, storage
        object, reference count of that object), the counts with only the
        ring's own references. Counts only storages not counted yet and
        storage ``again`` (a handle; ``None``: all). The handle stays valid
        while ``tensors`` keeps the storage alive."""
        if _use_count is None:
            return
        kept = {e[0]: e for e in self.storages if again is not None and e[0] != again}
        self.storages = []  # an old entry would count as a reference
        entries: Dict[int, Tuple[int, int, Any, int]] = {}
        for t in self.tensors:
            c = t.untyped_storage()._cdata
            if c not in entries:
                entries[c] = kept[c] if c in kept else self._storage(t)
        self.storages = list(entries.values())

    @staticmethod
    def _storage(tensor: torch.Tensor) -> Tuple[int, int, Any, int]:
        o = tensor.untyped_storage()
        c = o._cdata
        # Counted as the checks count: `o` bound by a tuple, a local and the argument.
        entry = (c, _use_count(c), o, 0)
        refs = sys.getrefcount(o)
        return (c, entry[1], o, refs)

    def replace(self, i: int, tensor: torch.Tensor) -> None:
        """Makes ``tensor`` buffer ``i`` of the slot (a grown values buffer).
        Only its storage is counted again: views of the slot's other buffers
        may be alive (the batch being made)."""
        self.tensors[i] = tensor
        self._baseline(tensor.untyped_storage()._cdata)

    def referenced(self) -> bool:
        if self.event is not None:
            if not self.event.query():
                return True
            self.event = None
        if _use_count is None:
            return True  # cannot tell: never reuse (fresh slots instead)
        getrefcount = sys.getrefcount
        for c, uses, o, refs in self.storages:
            if _use_count(c) != uses or getrefcount(o) != refs:
                return True
        return False


_Native = TypeVar("_Native", _native.NativeLoader, _native.NativeTokenLoader)
_Self = TypeVar("_Self", bound="_RustLoader[Any]")


class _RustLoader(Generic[_Native]):
    """What :class:`Loader` and :class:`TokenLoader` share around their native
    loader: the position the user sees (the state after the last batch handed
    out, although the device pipeline has fetched one ahead), that pipeline,
    and closing."""

    _native: Optional[_Native]
    _to_device: _ToDevice
    # State of the last batch handed to the user when the device pipeline
    # has fetched one batch ahead of it.
    _delivered_state: Optional[str]
    _slots: List[Any]

    def _live(self) -> _Native:
        if self._native is None or self._native.closed:
            raise RuntimeError(
                f"the loader is closed; create a new mosaicrs.torch.{type(self).__name__}"
            )
        return self._native

    @property
    def rank(self) -> int:
        return self._live().rank

    @property
    def world_size(self) -> int:
        return self._live().world_size

    @property
    def epoch(self) -> int:
        return json.loads(self._state_json())["epoch"]

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
        """Puts the Rust side back to the last handed-out batch (the device
        pipeline reads one batch ahead)."""
        if self._delivered_state is not None:
            state, self._delivered_state = self._delivered_state, None
            self._live().load_state_json(state)

    # -- the device pipeline ----------------------------------------------------
    def _one_ahead(
        self,
        fetch: Callable[[], Optional[Tuple[_Slot, List[Any], Any]]],
        assemble: Callable[[List[Any], Any], Any],
    ) -> Iterator[Any]:
        """Copies batch N+1 to the device while the step on batch N runs.

        ``fetch()`` gives the next host batch: its slot, the tensors to copy
        and what ``assemble`` needs besides the copies, or ``None`` at the end
        of the epoch. The state handed out is that of the batch the user has.
        """
        native = self._live()
        pending = None  # (copies, event, extra, state after that batch)
        while True:
            got = fetch()
            ready = None
            if got is not None:
                slot, host, extra = got
                state = native.state_json()
                out, event = self._to_device.start(host)
                slot.event = event
                ready = (out, event, extra, state)
            if pending is not None:
                out, event, extra, state = pending
                self._to_device.hand_over(out, event)
                # The Rust side is one batch ahead of what the user has seen.
                self._delivered_state = state if ready is not None else None
                yield assemble(out, extra)
            if ready is None:
                self._delivered_state = None
                return
            pending = ready

    # -- closing ----------------------------------------------------------------
    def close(self) -> None:
        """Stops the Rust threads; later use raises ``RuntimeError``."""
        native = self._native
        if native is not None and not native.closed:
            native.close()
        self._slots = []

    def __enter__(self: _Self) -> _Self:
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
            f"a mosaicrs.torch.{type(self).__name__} cannot be pickled (it owns Rust threads "
            "and torch buffers); create it in the process that iterates it, and keep "
            "DataLoader num_workers=0"
        )


class Loader(_RustLoader[_native.NativeLoader]):
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

    ``ragged``: ``{column: layout}`` for list, list-of-lists, string and
    binary columns (dict batches only), layout ``"offsets"`` (a
    :class:`Ragged`), ``"jagged"`` (a nested jagged tensor) or ``"padded"``
    (``batch[col]`` ``[B, L]`` and ``batch[col + "_mask"]``); strings and
    binary are ``uint8`` bytes (:func:`decode_strings`). ``max_len`` (int or
    dict by column, padded only): ``L``, default the batch's longest;
    ``truncate`` (bool or dict): cut longer rows instead of raising a
    ``ValueError`` naming the column and row; ``pad_value``: the padding.
    A list column not named in ``ragged`` is stacked as ``[B, D]``.
    A list-of-lists column is values ``[N, D]`` when its inner lists all
    hold ``D`` values; ``nested`` (bool or dict by column) takes inner lists
    of any length: ``"offsets"`` gives a :class:`NestedRagged` (values,
    offsets into the inner lists, inner offsets into the values),
    ``"padded"`` gives ``[B, L, M]`` and a ``[B, L, M]`` mask, ``max_len``
    being ``L`` and ``max_inner_len`` (int or dict) ``M`` (default the
    batch's longest inner list; ``truncate`` cuts both); ``"jagged"`` is
    refused (``torch.nested`` has one ragged dimension).

    ``streams``: instead of ``path``, a list of :class:`mosaicrs.Stream`
    (each a path or URL with its ``weight``, ``repeat`` or ``choose`` and its
    own ``storage_options``) mixed in one loader: every whole global batch
    holds each source's share to within one sample (docs/LOADER.md,
    "Mixing"). ``epoch_size``: samples per epoch with weights (default all
    rows); ``exhausted``: ``"cycle"`` (a source whose share exceeds its rows
    starts over in a fresh permutation) or ``"stop"`` (the epoch ends when
    the first source runs out). ``stream_index=True`` adds a ``"stream"``
    int64 tensor to dict batches: each sample's index in ``streams``. The
    remote sources share the cache: one larger than ``cache_limit`` streams
    through it (``shuffle="block-local:K"``), and a cache too small for all
    of them together is refused before any download, naming the sources and
    the size needed.

    ``state_dict()`` / ``load_state_dict()`` resume exactly mid-epoch, also on
    another world size (torchdata's ``Stateful`` protocol).

    ``version``: the dataset version to read (an int from
    :func:`mosaicrs.log`, default the newest). The state records the version
    read, and ``load_state_dict`` of a loader built from a path or URL
    reopens that version, so a resumed run keeps reading the data it started
    on after later appends and overwrites (until ``vacuum`` removes the
    version: then :class:`~mosaicrs.exceptions.VersionNotFoundError` names it
    and the oldest kept one). ``follow="latest"`` instead keeps the loader's
    own (newest) version: a state of another version continues at the start
    of its next epoch on this data (docs/LOADER.md, "Versions").
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
        ragged: Optional[Mapping[str, str]] = None,
        max_len: Union[int, Mapping[str, int], None] = None,
        truncate: Union[bool, Mapping[str, bool]] = False,
        pad_value: Union[float, Mapping[str, float]] = 0,
        nested: Union[bool, Mapping[str, bool]] = False,
        max_inner_len: Union[int, Mapping[str, int], None] = None,
        streams: Optional[Sequence[Stream]] = None,
        epoch_size: Optional[int] = None,
        exhausted: str = "cycle",
        stream_index: bool = False,
        version: Union[int, str, None] = None,
        follow: str = "pinned",
        _pipeline: Optional[bool] = None,
    ) -> None:
        # Every argument, to reopen the dataset at a state's version.
        self._args = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        self._native: Optional[_native.NativeLoader] = None
        if follow not in _FOLLOW:
            raise InvalidInputError(f"follow={follow!r} is not one of {', '.join(_FOLLOW)}")
        self.follow = follow
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidInputError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.cache_dir = cache_dir
        self.cache_limit = _byte_size(cache_limit, "cache_limit")
        if streams is not None and version is not None:
            raise InvalidInputError("version= applies to one dataset (path=), not to streams=")
        mix = _open_streams(path, streams, epoch_size, exhausted, cache_dir, self.cache_limit)
        if mix is not None:
            dataset = mix[0][0]
        else:
            assert path is not None
            dataset = _open_dataset(path, storage_options, cache_dir, self.cache_limit, version)
        self.dataset = dataset
        schema = dataset.schema
        names = schema.names
        if dtype not in _DTYPE_NAMES:
            raise InvalidInputError(f"dtype {dtype} is not one of {sorted(_DTYPES)}")
        shuffle_mode = _shuffle_mode(shuffle)
        self.label = label
        self.stream_index = bool(stream_index)
        if self.stream_index and label is not None:
            raise InvalidInputError("stream_index=True adds to dict batches; it cannot be used with label=")
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
            if ragged:
                raise InvalidInputError(
                    "ragged= columns come in dict batches: pass columns= (and no label=)"
                )
        else:
            if features is not None and columns is not None:
                raise InvalidInputError("pass features= or columns=, not both, when there is no label")
            chosen = columns if columns is not None else features
            if chosen is None:
                chosen = [f.name for f in schema if _numeric_or_list(f.type)]
                chosen += [c for c in (ragged or {}) if c not in chosen]
            stacked, own = [], list(chosen)
        self._ragged = self._ragged_args(
            ragged, max_len, truncate, pad_value, names, own, nested, max_inner_len
        )
        if self.stream_index and "stream" in own:
            raise InvalidInputError(
                'stream_index=True adds a "stream" entry; the batch has a column of that name'
            )
        rank_, world = resolve_rank_world(rank, world_size)
        self.device, self.pin_memory = _target(device, pin_memory)
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
            ragged=[(c, *args) for c, args in self._ragged.items()] or None,
            mix=mix,
            epoch_size=None if epoch_size is None else int(epoch_size),
            exhausted=exhausted,
        )
        self._outputs = self._native.outputs()
        # The layout of each ragged output, in output order.
        self._ragged_layouts = [self._ragged[o[0]][0] for o in self._outputs if o[3] is not None]
        self._slots: List[_Slot] = []
        # Slots handed out (or being copied out) and not yet released, oldest first.
        self._held: List[_Slot] = []
        self._batch = batch_size
        # A batch is made of `_items(slot)` (ragged views, the sources), not
        # the slot's tensors as they are.
        self._per_item = bool(self._ragged) or self.stream_index
        self._make = self._batch_maker()
        # Slots the Rust side may hold at once: being filled, queued, prefetched.
        self._ring = self._native.ring
        self._to_device = _ToDevice(self.device)
        # Device copies one batch ahead; `_pipeline=True` runs the same path on
        # the CPU (with copies) so that CI without a GPU covers it.
        self._pipelined = self._to_device.cuda if _pipeline is None else bool(_pipeline)
        # State of the last batch handed to the user when the CUDA path has
        # fetched one batch ahead of it.
        self._delivered_state: Optional[str] = None
        # Dense batches on the host come from the native side whole: no
        # Python frame per batch, a slot's aliases reused while untouched.
        self._dense = self._dense_batches()

    @property
    def version(self) -> Optional[int]:
        """The dataset version this loader reads (``None`` for a mix)."""
        return None if self._args["streams"] is not None else self.dataset.version

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Continues from ``state_dict`` (same seed and shuffle; any world size
        or batch size). A state of another dataset version reopens that
        version when the loader was built from a path or URL (``VersionNotFoundError``
        once ``vacuum`` removed it); with ``follow="latest"`` the loader keeps
        its own version and starts the state's next epoch on it."""
        if not isinstance(state_dict, Mapping):
            raise InvalidInputError("load_state_dict expects the dict returned by state_dict()")
        state = dict(state_dict)
        pinned, own = state.get("version"), self.version
        if pinned is not None and own is not None and pinned != own:
            if self.follow == "latest":
                state = self._moved_to_own_version(state)
            elif not isinstance(self._args["path"], Dataset):
                self._reopen(int(pinned))
        super().load_state_dict(state)

    def _moved_to_own_version(self, state: Dict[str, Any]) -> Dict[str, Any]:
        """``state`` continued on this loader's version: where the rows are
        the same, at the same position; else at the start of its next epoch."""
        own = json.loads(self._live().state_json())
        moved = dict(state, version=own.get("version"))
        if state.get("dataset") != own["dataset"]:
            moved["dataset"] = own["dataset"]
            if int(state.get("samples_consumed", 0)) > 0:
                moved["epoch"] = int(state["epoch"]) + 1
            moved["samples_consumed"] = 0
        return moved

    def _reopen(self, version: int) -> None:
        """Rebuilds this loader over ``version`` of its path, with the same
        arguments."""
        args = self._args
        try:
            dataset = Dataset(
                args["path"],
                args["storage_options"],
                cache_dir=args["cache_dir"],
                cache_limit=self.cache_limit,
                version=version,
            )
        except VersionNotFoundError as e:
            raise VersionNotFoundError(
                f"cannot resume the loader state, which reads version {version} of "
                f"{self.dataset.path}: {e}; pass follow='latest' to continue on the newest version"
            ) from e
        self.close()
        self.__init__(**dict(args, path=dataset, version=None))  # type: ignore[misc]
        self._args = dict(args, version=version)

    @staticmethod
    def _ragged_args(
        ragged: Optional[Mapping[str, str]],
        max_len: Any,
        truncate: Any,
        pad_value: Any,
        names: Sequence[str],
        columns: Sequence[str],
        nested: Any = False,
        max_inner_len: Any = None,
    ) -> Dict[str, Tuple[str, Optional[int], bool, float, bool, Optional[int]]]:
        """``{column: (layout, max_len, truncate, pad_value, nested,
        max_inner_len)}``, checked."""
        if ragged is None:
            if not (max_len is None and truncate is False and pad_value == 0
                    and nested is False and max_inner_len is None):
                raise InvalidInputError(
                    "max_len=, truncate=, pad_value=, nested= and max_inner_len= apply to "
                    "ragged= columns"
                )
            return {}
        if not isinstance(ragged, Mapping):
            raise InvalidInputError(
                f"ragged= maps column names to a layout ({', '.join(_LAYOUTS)}), got {ragged!r}"
            )
        for c, layout in ragged.items():
            if c not in names:
                raise ColumnNotFoundError(
                    f"ragged= column {c!r} not found; available columns: {', '.join(names)}"
                )
            if c not in columns:
                raise InvalidInputError(f"ragged= column {c!r} is not among columns= {list(columns)}")
            if layout not in _LAYOUTS:
                raise InvalidInputError(
                    f"ragged layout {layout!r} for column {c!r} is not one of {', '.join(_LAYOUTS)}"
                )
        cols = list(ragged)

        def check_max_len(v: Any, c: str, option: str = "max_len") -> Optional[int]:
            if v is None:
                return None
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise InvalidInputError(
                    f"{option} for column {c!r} must be a positive integer or None, got {v!r}"
                )
            return v

        def check_truncate(v: Any, c: str) -> bool:
            if v is None:
                return False
            if not isinstance(v, bool):
                raise InvalidInputError(f"truncate for column {c!r} must be a bool, got {v!r}")
            return v

        def check_pad(v: Any, c: str) -> float:
            if v is None:
                return 0.0
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise InvalidInputError(f"pad_value for column {c!r} must be a number, got {v!r}")
            return float(v)

        def check_nested(v: Any, c: str) -> bool:
            if v is None:
                return False
            if not isinstance(v, bool):
                raise InvalidInputError(f"nested for column {c!r} must be a bool, got {v!r}")
            return v

        lens = _per_column(max_len, "max_len", cols, check_max_len)
        cuts = _per_column(truncate, "truncate", cols, check_truncate)
        pads = _per_column(pad_value, "pad_value", cols, check_pad)
        nests = _per_column(nested, "nested", cols, check_nested)
        inner = _per_column(
            max_inner_len, "max_inner_len", cols,
            lambda v, c: check_max_len(v, c, "max_inner_len") if nests[c] and ragged[c] == "padded"
            else v,
        )
        return {c: (ragged[c], lens[c], cuts[c], pads[c], nests[c], inner[c]) for c in cols}

    # -- properties -------------------------------------------------------
    @property
    def batch_size(self) -> int:
        return self._live().batch_size

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

    # -- slots ------------------------------------------------------------------
    def _new_slot(self) -> _Slot:
        native = self._live()
        b = native.batch_size
        tensors = []
        for name, dtype, width, inner in self._outputs:
            if inner is not None:
                tensors.append(torch.zeros(b + 1, dtype=torch.int64, pin_memory=self.pin_memory))
                # A first guess at the batch's values; a batch that needs more
                # spills and the buffer grows (see _grow).
                per_row = self._ragged[name][1] or _RAGGED_START_LEN
                if inner == 0:
                    # Nested lists: the inner offsets, then the values.
                    tensors.append(torch.zeros(b * per_row + 1, dtype=torch.int64,
                                               pin_memory=self.pin_memory))
                    inner = self._ragged[name][5] or _RAGGED_START_LEN
                tensors.append(torch.zeros(b * per_row * inner, dtype=_DTYPES[dtype],
                                           pin_memory=self.pin_memory))
                continue
            shape = (b,) if width is None else (b, width)
            # zeros, not empty: a bool buffer must hold valid bools before Rust views it.
            t = torch.zeros(shape, dtype=_DTYPES[dtype], pin_memory=self.pin_memory)
            tensors.append(t)
        if not self._ragged:
            tensors = self._one_storage(tensors)
        sid = native.add_slot([(t.data_ptr(), t.numel() * t.element_size()) for t in tensors])
        slot = _Slot(sid, tensors)
        self._slots.append(slot)
        return slot

    def _one_storage(self, tensors: List[torch.Tensor]) -> List[torch.Tensor]:
        """``tensors`` as views of one buffer (each at a 64-byte boundary),
        so that a slot has one storage to check per batch, not one per
        output."""
        offsets, total = [], 0
        for t in tensors:
            offsets.append(total)
            total += -(-t.numel() * t.element_size() // 64) * 64
        buffer = torch.zeros(total, dtype=torch.uint8, pin_memory=self.pin_memory)
        return [
            buffer[at: at + t.numel() * t.element_size()].view(t.dtype).view(t.shape)
            for at, t in zip(offsets, tensors)
        ]

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
        names = [o[0] for o in self._outputs]
        if self.label is None:
            layouts = [self._ragged[n][0] if o[3] is not None else None
                       for n, o in zip(names, self._outputs)]

            def as_dict(tensors: List[torch.Tensor]) -> Dict[str, torch.Tensor]:
                return {n: t.detach() for n, t in zip(names, tensors)}

            def as_dict_ragged(items: List[Any]) -> Dict[str, Any]:
                out: Dict[str, Any] = {}
                for n, layout, item in zip(names, layouts, items):
                    if layout is None:
                        out[n] = item.detach()
                        continue
                    values, offsets, pad_len, inner, pad_inner = item
                    offsets = offsets.detach()
                    if inner is not None:
                        out.update(_nested_entries(n, layout, values, offsets, inner, pad_len))
                    elif layout == "offsets":
                        out[n] = Ragged(values, offsets)
                    elif layout == "jagged":
                        out[n] = torch.nested.nested_tensor_from_jagged(values, offsets)
                    else:
                        lengths = (offsets[1:] - offsets[:-1]).clamp_(max=pad_len)
                        out[n] = values
                        out[n + "_mask"] = (
                            torch.arange(pad_len, device=values.device) < lengths.unsqueeze(1)
                        )
                return out

            to_dict = as_dict_ragged if self._ragged else as_dict
            if not self.stream_index:
                return to_dict

            def with_stream(items: List[Any]) -> Dict[str, Any]:
                # `_items` puts the sources after the outputs.
                out = to_dict(items)
                out["stream"] = items[-1]
                return out
            return with_stream
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

    def _assemble(self, tensors: List[Any]) -> Any:
        return self._make(tensors)

    def _dense_batches(self) -> Optional[_native.DenseBatches]:
        """The native batch source of a loader whose batch is its slot's
        tensors as they are (no ragged columns, stream indices, device
        copies or concatenation), or ``None`` for the Python paths."""
        if self._pipelined or self._per_item or _use_count is None:
            return None
        names = [o[0] for o in self._outputs]
        pair = None
        if self.label is not None:
            features = [i for i, n in enumerate(names) if n != self.label]
            if len(features) != 1:
                return None  # list features: concatenated per batch
            pair = (features[0], names.index(self.label))
        # Weak: the native side holds these, and the loader holds it.
        me = weakref.ref(self)

        def arm(sid: int) -> Tuple[Tuple[torch.Tensor, ...], List[torch.UntypedStorage]]:
            tensors = me()._slots[sid].tensors  # type: ignore[union-attr]
            # One storage object per storage: torch returns that same object
            # from every untyped_storage() while the native side holds it.
            storages = {s._cdata: s for s in (t.untyped_storage() for t in tensors)}
            return tuple(t.detach() for t in tensors), list(storages.values())

        def top_up(n: int) -> None:
            for _ in range(n):
                me()._new_slot()  # type: ignore[union-attr]

        return self._live().dense_batches(
            arm, top_up, _use_count, pair=pair, names=None if pair else names
        )

    def _held_slots(self) -> List[int]:
        """The slots handed out and not yet back, oldest first."""
        held = [s.id for s in self._held]
        return held + (self._dense.held() if self._dense is not None else [])

    def _items(self, slot: _Slot) -> List[Any]:
        """Per output of a delivered slot: its tensor (dense), or for a ragged
        column ``(values, offsets, pad_len, inner_offsets, pad_inner)`` where
        ``values`` is a view of the written part of the slot's values buffer
        (``[N]``, ``[N, D]``, or ``[B, L(, D)]`` padded; nested lists ``[V]``
        or ``[B, L, M]``) and ``inner_offsets`` that of nested lists' inner
        offsets (``None`` for one level). Grows the values buffers whose batch spilled.
        With ``stream_index``, then each sample's source (int64 ``[B]``): a
        host tensor that travels to the device with the batch."""
        native = self._live()
        fills = native.ragged_fills(slot.id) if self._ragged else []
        items: List[Any] = []
        at = k = 0
        b = self._batch
        for _name, _dtype, _width, inner in self._outputs:
            if inner is None:
                items.append(slot.tensors[at])
                at += 1
                continue
            n, pad_len, spilled, n_inner, pad_inner, inner_spilled = fills[k]
            layout = self._ragged_layouts[k]
            inner_offsets = None
            if inner == 0:
                if inner_spilled:
                    self._grow(slot, k, at + 1, n_inner, inner=True)
                inner_offsets = slot.tensors[at + 1][:n_inner]
                at += 1
            if spilled:
                self._grow(slot, k, at + 1, n)
            values = slot.tensors[at + 1][:n]
            if layout == "padded":
                width = pad_inner if inner == 0 else inner
                values = values.view(b, pad_len) if inner == 1 else values.view(b, pad_len, width)
            elif inner > 1:
                values = values.view(-1, inner)
            items.append((values, slot.tensors[at - (inner == 0)], pad_len, inner_offsets, pad_inner))
            at += 2
            k += 1
        if self.stream_index:
            # One buffer, no Python int per sample.
            items.append(torch.frombuffer(native.last_sources_int64(), dtype=torch.int64))
        return items

    def _grow(self, slot: _Slot, k: int, i: int, need: int, inner: bool = False) -> None:
        """Replaces values buffer ``i`` (the inner offsets buffer when ``inner``)
        of ragged output ``k`` of a held slot by a larger one, geometric so that
        few batches spill, and has the Rust side copy the spilled batch into it.
        The old buffer is not referenced: the slot was free when its batch was
        written."""
        old = slot.tensors[i]
        size = max(2 * old.numel(), need)
        make = torch.zeros if old.dtype == torch.bool else torch.empty
        t = make(size, dtype=old.dtype, pin_memory=self.pin_memory)
        self._live().adopt_spill(slot.id, k, t.data_ptr(), t.numel() * t.element_size(), inner)
        slot.replace(i, t)

    def __iter__(self) -> Iterator[Any]:
        if self._dense is not None:
            # Every step in C, no Python frame per batch; the epoch starts at
            # the first step, as the generator below starts at its first.
            return self._dense.epoch(self._begin)
        return self._iter_slots()

    def _begin(self) -> _native.NativeLoader:
        """Starts the current epoch from the position handed out."""
        native = self._live()
        self._sync_state()
        self._reclaim()
        native.start()
        return native

    def _iter_slots(self) -> Iterator[Any]:
        """The batches of the Python per-batch paths."""
        native = self._begin()
        if self._pipelined:
            yield from self._iter_pipelined(native)
            return
        if _use_count is None:
            # Cannot tell whether a batch is still held: fresh slots throughout.
            while True:
                sid = native.next(self._reclaim(False))
                if sid is None:
                    return
                slot = self._take(sid)
                yield self._make(self._items(slot) if self._per_item else slot.tensors)
        # The hot loop, `_reclaim` and `_take` written out (a Python call
        # costs about as much as the checks): per batch, a use-count check of
        # the slots handed out, one native call (which releases the slot that
        # came free and waits for the next batch with the GIL released) and
        # fresh tensors for the user.
        held, slots, ring, make = self._held, self._slots, self._ring, self._make
        items = self._items if self._per_item else None
        next_, release_slot, use_count = native.next, native.release_slot, _use_count
        getrefcount = sys.getrefcount
        while True:
            release = None
            i = 0
            while i < len(held):
                s = held[i]
                for c, uses, o, refs in s.storages:
                    if use_count(c) != uses or getrefcount(o) != refs:
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
            yield make(s.tensors if items is None else items(s))

    def _iter_pipelined(self, native: _native.NativeLoader) -> Iterator[Any]:
        """The device pipeline (:meth:`_one_ahead`) over the native batches."""

        def fetch() -> Optional[Tuple[_Slot, List[Any], Any]]:
            got = native.next(self._reclaim(False))
            if got is None:
                return None
            slot = self._take(got)
            return slot, self._items(slot) if self._per_item else slot.tensors, None

        yield from self._one_ahead(fetch, lambda out, _extra: self._assemble(out))

    def close(self) -> None:
        """Stops the Rust threads; later use raises ``RuntimeError``."""
        super().close()
        self._held = []
        self._dense = None


class _TokenSlot(_Slot):
    """A token batch's host buffers, all filled by Rust: ``[B, L]`` ids,
    ``[B]`` lengths, ``B * L + 1`` segment boundaries (the batch uses the
    first ``S + 1``), then those asked for: ``[B, L]`` positions, attention
    mask and labels.

    A batch hands out the slot's own tensor objects (and a kept prefix of
    the boundaries) rather than fresh aliases: creating an alias costs more
    than a batch's whole Python side. The slot is then held while any of
    them is referenced from Python (its reference count), from C++ (its
    TensorImpl use count: an autograd graph that saved it) or through a view
    (its storage's use count). Where torch lacks the TensorImpl use count,
    each batch gets fresh ``detach()`` aliases instead, which show in the
    storage's use count alone."""

    __slots__ = ("buffers", "named", "template", "cu", "lengths", "cu_views", "out", "out_refs",
                 "out_uses", "last_cu", "last_cu_refs")

    # Prefixes of the segment boundaries kept per slot (a batch's segment
    # count takes few distinct values).
    _MAX_CU_VIEWS = 128

    def __init__(self, id: int, tensors: List[Optional[torch.Tensor]],
                 names: Sequence[Optional[str]]):
        # Only the tensors that the user gets are checked for references.
        super().__init__(id, [t for n, t in zip(names, tensors) if n is not None and t is not None]
                         + [tensors[2]])
        # (address, bytes) or None per argument of NativeTokenLoader.next_into.
        self.buffers = tuple(
            None if t is None else (t.data_ptr(), t.numel() * t.element_size()) for t in tensors
        )
        # What the user gets besides cu_seqlens and max_seqlen, by name.
        self.named = [(n, t) for n, t in zip(names, tensors) if n is not None and t is not None]
        self.out = tuple(t for _, t in self.named)
        # Copied per batch (a dict copy costs half of building it from pairs).
        self.template: Dict[str, Any] = dict(self.named)
        self.lengths = tensors[1]  # kept alive: Rust writes it
        self.cu = tensors[2]
        self.cu_views: Dict[int, torch.Tensor] = {}
        # Python reference counts and C++ use counts of `out` with only the
        # slot's own references (set by `settle`), and the reference count of
        # the boundaries handed out last (set by `batch`).
        self.out_refs: Tuple[int, ...] = ()
        self.out_uses: Tuple[int, ...] = ()
        self.last_cu: Optional[torch.Tensor] = None
        self.last_cu_refs = 0

    def settle(self) -> None:
        """Takes the reference counts of the tensors handed out, once the
        slot's creator has let go of them."""
        self.out_refs = self._out_refs()
        if _tensor_use_count is not None:
            self.out_uses = tuple(map(_tensor_use_count, self.out))
        self.last_cu = None

    def _out_refs(self) -> Tuple[int, ...]:
        # Called the same way for the baseline and the check: the counts include
        # the same temporary references.
        return tuple(map(sys.getrefcount, self.out))

    def _cu_view(self, segments: int) -> torch.Tensor:
        """The first ``segments + 1`` boundaries, sliced once per prefix."""
        view = self.cu_views.get(segments)
        if view is None:
            view = self.cu[: segments + 1]
            if len(self.cu_views) < self._MAX_CU_VIEWS:
                self.cu_views[segments] = view
                # The kept view holds the storage too: the baseline moves.
                self.replace(len(self.tensors) - 1, self.cu)
        return view

    def cu_seqlens(self, segments: int) -> torch.Tensor:
        """A fresh alias of the first ``segments + 1`` boundaries (the device
        pipeline's and the fallback's hand-off)."""
        return self._cu_view(segments).detach()

    def batch(self, segments: int, max_seqlen: int) -> Dict[str, Any]:
        """The batch dict over the slot's tensors, after a fill."""
        if _tensor_use_count is None:
            batch = {n: t.detach() for n, t in self.named}
            batch["cu_seqlens"] = self.cu_seqlens(segments)
        else:
            # `cu` bound as in `referenced`: the counts include the same local.
            cu = self.last_cu = self._cu_view(segments)
            self.last_cu_refs = sys.getrefcount(cu)
            batch = self.template.copy()
            batch["cu_seqlens"] = cu
        batch["max_seqlen"] = max_seqlen
        return batch

    def referenced(self) -> bool:
        if _tensor_use_count is not None:
            if (self._out_refs() != self.out_refs
                    or tuple(map(_tensor_use_count, self.out)) != self.out_uses):
                return True
            # The boundaries handed out last (views of them show in the storage count).
            cu = self.last_cu
            if cu is not None and (sys.getrefcount(cu) != self.last_cu_refs
                                   or _tensor_use_count(cu) != 1):
                return True
            if super().referenced():
                return True
            self._renew()
            return False
        return super().referenced()

    def _renew(self) -> None:
        """Before the slot is refilled: replaces each tensor handed out last
        that would carry the old batch's identity into the next one, a weak
        reference (which would give the refilled batch back) or a reassigned
        class, by a fresh tensor over the same buffer. The old object is
        then gone (only weakly referenced), so the weak reference is dead."""
        if (tuple(map(type, self.out)) == _PLAIN[len(self.out)]
                and not any(map(getweakrefcount, self.out))):
            cu = self.last_cu
            if cu is None or (type(cu) is torch.Tensor and not getweakrefcount(cu)):
                return
        b = self.lengths.numel()
        shape = (b, (self.cu.numel() - 1) // b)  # [B, L]; the boundaries are B * L + 1
        self.named = [(n, self._plain(t, shape)) for n, t in self.named]
        self.out = tuple(t for _, t in self.named)
        self.template = dict(self.named)
        cu, self.last_cu = self.last_cu, None
        if cu is not None:
            self.cu_views = {k: v for k, v in self.cu_views.items() if v is not cu}
            del cu
        self.tensors = list(self.out) + [self.cu]
        self._baseline()
        self.settle()

    @staticmethod
    def _plain(t: torch.Tensor, shape: Tuple[int, ...]) -> torch.Tensor:
        """``t`` if it carries nothing over, else a plain tensor of ``shape`` over its buffer."""
        if type(t) is torch.Tensor and not getweakrefcount(t):
            return t
        with torch._C.DisableTorchFunctionSubclass():
            storage, dtype = t.untyped_storage(), t.dtype
        return torch.empty(0, dtype=dtype).set_(storage, 0, shape)


# The classes of a token batch's tensors as made, by their number.
_PLAIN = [(torch.Tensor,) * n for n in range(8)]

_TOKEN_DTYPES = {torch.int64: "int64", torch.int32: "int32"}
_MASK_DTYPES = {**_TOKEN_DTYPES, torch.bool: "bool"}


def _token_output(value: Union[bool, torch.dtype, None], name: str,
                  dtypes: Mapping[torch.dtype, str]) -> Optional[torch.dtype]:
    """The dtype of an optional token output: ``True`` is int64, ``False`` or
    ``None`` leaves it out."""
    if value is True:
        return torch.int64
    if value is False or value is None:
        return None
    if value not in dtypes:
        allowed = ", ".join(str(d) for d in dtypes)
        raise InvalidInputError(f"{name}={value!r} is not True, False or one of {allowed}")
    return value


def _positive(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")
    return value


class TokenLoader(_RustLoader[_native.NativeTokenLoader]):
    """Documents of token ids packed into ``[B, L]`` sequences for language
    model training, assembled by Rust into tensors.

    The documents are the rows of the list-of-integers ``column``, taken in
    the epoch order of :class:`Loader` (``shuffle``, ``seed``, ``rows``), each
    followed by ``eos_id`` when given; this stream of tokens is cut into
    sequences of ``seq_len`` tokens, and global step ``s`` holds sequences
    ``[s*B*W, (s+1)*B*W)`` (``B = batch_size`` per rank, ``W = world_size``),
    rank ``r`` the ``r``-th block of ``B``. Every token of the epoch appears
    once, documents keep their token order, and a document longer than
    ``seq_len`` continues in the next sequence. ``drop_last=True`` drops what
    does not fill a whole global step; ``False`` pads the last sequence with
    ``pad_id`` (default ``eos_id``, else 0) and completes the last step with
    padding rows, so every rank gets the same number of steps.

    Each batch is a dict:

    - ``input_ids`` ``[B, L]`` (``dtype``: ``torch.int64`` or ``torch.int32``);
    - ``position_ids`` ``[B, L]``, restarting at 0 at each document and at
      each row (a document split across rows restarts in the next row):
      int64 by default, as Hugging Face models take them;
      ``position_ids=torch.int32`` halves their bytes, ``False`` leaves them
      out;
    - ``cu_seqlens`` int32 ``[S + 1]``: the segment boundaries over the
      flattened ``B * L`` tokens (one segment per document piece per row,
      padding its own segment), and ``max_seqlen`` (an int), as
      flash-attention's variable-length kernels take them;
    - ``attention_mask`` ``[B, L]`` (1 for tokens, 0 for padding) only when
      asked: ``attention_mask=True`` (int64), or ``torch.int32`` /
      ``torch.bool``. Left out by default: padding only ever ends a row
      (``drop_last=False``, last batch), so under a causal mask no token
      attends to it, and ``labels`` already hold -100 there;
    - ``labels`` ``[B, L]`` int64 when ``labels=True``: ``input_ids`` with
      -100 at each segment's first token and at padding (Hugging Face causal
      models shift the labels themselves, so no token is predicted across a
      document boundary).

    ``vocab_size``: a token outside ``[0, vocab_size)`` is an error naming
    the column and row. ``rank`` / ``world_size``: see
    :func:`resolve_rank_world`. ``device`` / ``pin_memory`` / ``path`` /
    ``cache_dir`` / ``cache_limit`` / ``storage_options``: as for
    :class:`Loader`. ``state_dict()`` / ``load_state_dict()`` resume exactly
    mid-epoch, mid-document, also on another world size or batch size (the
    state counts global sequences).

    ``streams``: instead of ``path``, a list of :class:`mosaicrs.Stream`
    mixed as in :class:`Loader` (``epoch_size``, ``exhausted`` too): the
    documents are the mixed order's, every block of ``batch_size *
    world_size`` documents holding each source's share to within one
    document, each source's documents in its own permutation, then packed as
    above. The state keeps the block, so a resume on another world size
    continues the same stream. ``last_sources`` names the source of each of
    ``last_documents``.

    Example::

        loader = mosaicrs.torch.TokenLoader("tokens.mosaicrs", seq_len=2048, batch_size=8,
                                            eos_id=tokenizer.eos_token_id, labels=True)
        for batch in loader:
            loss = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"],
                         labels=batch["labels"]).loss
    """

    def __init__(
        self,
        path: Union[str, "os.PathLike[str]", Dataset, None] = None,
        *,
        seq_len: int,
        batch_size: int,
        column: str = "input_ids",
        eos_id: Optional[int] = None,
        pad_id: Optional[int] = None,
        vocab_size: Optional[int] = None,
        labels: bool = False,
        shuffle: Union[bool, str] = True,
        seed: int = 0,
        drop_last: bool = True,
        rank: Optional[int] = None,
        world_size: Optional[int] = None,
        device: Union[str, torch.device, None] = None,
        pin_memory: Optional[bool] = None,
        dtype: torch.dtype = torch.int64,
        position_ids: Union[bool, torch.dtype] = True,
        attention_mask: Union[bool, torch.dtype] = False,
        rows: Optional[Sequence[int]] = None,
        cache_dir: Union[str, "os.PathLike[str]", None] = None,
        cache_limit: Union[int, str, None] = None,
        storage_options: Optional[Mapping[str, str]] = None,
        streams: Optional[Sequence[Stream]] = None,
        epoch_size: Optional[int] = None,
        exhausted: str = "cycle",
        _pipeline: Optional[bool] = None,
    ) -> None:
        self._native = None
        self._slots: List[_TokenSlot] = []
        self._turn = 0  # where the search for a free slot starts
        _positive(seq_len, "seq_len")
        _positive(batch_size, "batch_size")
        if dtype not in _TOKEN_DTYPES:
            raise InvalidInputError(f"dtype {dtype} is not torch.int64 or torch.int32")
        self.position_dtype = _token_output(position_ids, "position_ids", _TOKEN_DTYPES)
        self.mask_dtype = _token_output(attention_mask, "attention_mask", _MASK_DTYPES)
        for name, value in (("eos_id", eos_id), ("pad_id", pad_id), ("vocab_size", vocab_size)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise InvalidInputError(f"{name} must be an integer or None, got {value!r}")
        if vocab_size is not None and vocab_size < 1:
            raise InvalidInputError(f"vocab_size must be positive, got {vocab_size}")
        self.cache_dir = cache_dir
        self.cache_limit = _byte_size(cache_limit, "cache_limit")
        mix = _open_streams(path, streams, epoch_size, exhausted, cache_dir, self.cache_limit)
        if mix is not None:
            self.dataset = mix[0][0]
        else:
            assert path is not None
            self.dataset = _open_dataset(path, storage_options, cache_dir, self.cache_limit)
        rank_, world = resolve_rank_world(rank, world_size)
        self.device, self.pin_memory = _target(device, pin_memory)
        self.labels = bool(labels)
        self.dtype = dtype
        self._native = _native.NativeTokenLoader(
            self.dataset,
            seq_len,
            batch_size,
            column=column,
            eos_id=eos_id,
            pad_id=pad_id,
            vocab_size=vocab_size,
            drop_last=bool(drop_last),
            seed=int(seed),
            shuffle=_shuffle_mode(shuffle),
            rank=rank_,
            world_size=world,
            rows=None if rows is None else [int(r) for r in rows],
            dtype=_TOKEN_DTYPES[dtype],
            mix=mix,
            epoch_size=None if epoch_size is None else int(epoch_size),
            exhausted=exhausted,
            position_ids=None if self.position_dtype is None else _TOKEN_DTYPES[self.position_dtype],
            attention_mask=None if self.mask_dtype is None else _MASK_DTYPES[self.mask_dtype],
        )
        self.seq_len = seq_len
        self.batch_size = batch_size
        self._to_device = _ToDevice(self.device)
        self._pipelined = self._to_device.cuda if _pipeline is None else bool(_pipeline)
        self._delivered_state = None

    # -- properties -------------------------------------------------------
    @property
    def column(self) -> str:
        return self._live().column

    @property
    def total_tokens(self) -> int:
        """Tokens of one epoch's stream, each document's eos included (every rank's)."""
        return self._live().total_tokens

    @property
    def tokens_per_epoch(self) -> int:
        """Token positions of one epoch's sequences, every rank's, padding
        included: what an epoch trains on (``len(self) * B * L * W``)."""
        return self._live().epoch_plan()[1] * self.seq_len

    @property
    def dropped_tokens(self) -> int:
        """Tokens of an epoch that ``drop_last=True`` leaves out."""
        return self._live().epoch_plan()[2]

    @property
    def last_documents(self) -> List[int]:
        """Dataset rows of the documents that the last batch Rust filled touched."""
        return self._live().last_documents()

    @property
    def last_sources(self) -> List[int]:
        """The index in ``streams`` of each of :attr:`last_documents` (0 without a mix)."""
        return self._live().last_sources()

    @property
    def mix_counts(self) -> List[int]:
        """Documents each source of the mix gives an epoch (empty without a mix)."""
        return self._live().mix_counts()

    def __len__(self) -> int:
        """Batches per epoch for this rank."""
        return self._live().epoch_plan()[0]

    # -- buffers ------------------------------------------------------------------
    def _new_slot(self) -> _TokenSlot:
        b, l, pin = self.batch_size, self.seq_len, self.pin_memory

        def maybe(dtype: Optional[torch.dtype]) -> Optional[torch.Tensor]:
            # zeros, not empty: a bool buffer must hold valid bools before Rust views it.
            return None if dtype is None else torch.zeros((b, l), dtype=dtype, pin_memory=pin)

        # In NativeTokenLoader.next_into's order.
        tensors = [
            torch.zeros((b, l), dtype=self.dtype, pin_memory=pin),
            torch.zeros((b,), dtype=torch.int64, pin_memory=pin),
            torch.zeros((b * l + 1,), dtype=torch.int32, pin_memory=pin),
            maybe(self.position_dtype),
            maybe(self.mask_dtype),
            maybe(torch.int64 if self.labels else None),
        ]
        names = ["input_ids", None, None, "position_ids", "attention_mask", "labels"]
        slot = _TokenSlot(len(self._slots), tensors, names)
        self._slots.append(slot)
        return slot

    def _free_slot(self) -> _TokenSlot:
        """A slot that nothing references (no batch the user holds, no copy
        in flight), else a fresh one: a held batch is never overwritten.
        The search starts after the slot filled last: the user usually holds
        only the newest batch, so the first slot looked at is free."""
        slots = self._slots
        n = len(slots)
        for k in range(n):
            i = (self._turn + k) % n
            if not slots[i].referenced():
                self._turn = i + 1
                return slots[i]
        self._turn = n + 1
        slot = self._new_slot()
        slot.settle()
        return slot

    def _fill(self, native: _native.NativeTokenLoader) -> Optional[Tuple[_TokenSlot, torch.Tensor, int]]:
        """The next batch in a free slot, with its derived tensors: the slot,
        ``cu_seqlens`` and ``max_seqlen``; ``None`` at the end of the epoch."""
        slot = self._free_slot()
        # One call fills the batch and derives the mask, the segment
        # boundaries and the labels from its positions and lengths, in one
        # pass with the GIL released (torch operations on the host batch
        # would cost more than the packing).
        got = native.next_into(*slot.buffers)
        if got is None:
            return None
        segments, max_seqlen = got
        return slot, slot.cu_seqlens(segments), max_seqlen

    # -- iteration ---------------------------------------------------------------
    def __iter__(self) -> Iterator[Dict[str, Any]]:
        native = self._live()
        self._sync_state()
        native.start()
        if self._pipelined:
            yield from self._iter_pipelined(native)
            return
        # Per batch: a free slot, one native call, and a dict over the slot's
        # tensors (see _TokenSlot for how a held batch shows).
        free_slot, next_into = self._free_slot, native.next_into
        while True:
            slot = free_slot()
            got = next_into(*slot.buffers)
            if got is None:
                return
            yield slot.batch(*got)

    def _iter_pipelined(self, native: _native.NativeTokenLoader) -> Iterator[Dict[str, Any]]:
        """The device pipeline (:meth:`_one_ahead`): the derived tensors are
        computed on the host batch, then everything is copied together."""
        names: List[str] = []

        def fetch() -> Optional[Tuple[_Slot, List[torch.Tensor], Any]]:
            got = self._fill(native)
            if got is None:
                return None
            slot, cu, max_seqlen = got
            names[:] = [n for n, _ in slot.named]
            return slot, [t for _, t in slot.named] + [cu], max_seqlen

        def assemble(out: List[torch.Tensor], max_seqlen: Any) -> Dict[str, Any]:
            batch: Dict[str, Any] = dict(zip(names, out))
            batch["cu_seqlens"] = out[-1]
            batch["max_seqlen"] = max_seqlen
            return batch

        yield from self._one_ahead(fetch, assemble)


_WORKER_MESSAGE = (
    "mosaicrs.torch.{name} loads on its own Rust threads and must not run inside "
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
        self._loader: Optional[Union[Loader, TokenLoader]] = None
        self._pending_state: Optional[Dict[str, Any]] = None
        self._pending_epoch: Optional[int] = None

    def _make(self) -> Union[Loader, TokenLoader]:
        return Loader(self._path, self._batch_size, **self._kwargs)

    def _get(self) -> Union[Loader, TokenLoader]:
        info = torch.utils.data.get_worker_info()
        if info is not None:
            raise RuntimeError(_WORKER_MESSAGE.format(name=type(self).__name__))
        if self._loader is None:
            self._loader = self._make()
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


class TokenIterableDataset(IterableDataset):
    """A :class:`TokenLoader` for code that keeps ``DataLoader(ds,
    batch_size=None)`` (Lightning, the Hugging Face ``Trainer``, torchdata's
    ``StatefulDataLoader``). Takes the same arguments as :class:`TokenLoader`;
    each item is a whole batch dict. Use ``num_workers=0``."""

    def __init__(
        self,
        path: Union[str, "os.PathLike[str]", Dataset, None] = None,
        *,
        seq_len: int,
        batch_size: int,
        **kwargs: Any,
    ) -> None:
        super().__init__(path, batch_size, seq_len=seq_len, **kwargs)

    def _make(self) -> TokenLoader:
        return TokenLoader(self._path, batch_size=self._batch_size, **self._kwargs)
