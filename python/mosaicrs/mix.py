"""Sources of a mixed loader: :class:`Stream`.

A mix reads several datasets in one :class:`mosaicrs.torch.Loader`, each
whole global batch holding every source's share to within one sample. The
counts follow MosaicML Streaming's ``Stream``: give every source a
``weight`` (relative shares of ``epoch_size``, by default all rows), or
``repeat`` / ``choose`` / nothing (absolute); docs/LOADER.md, "Mixing",
states the rule and its guarantees.
"""

from __future__ import annotations

import os
from typing import Mapping, Optional, Tuple, Union

from .exceptions import InvalidInputError


def _non_negative(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise InvalidInputError(f"Stream {name} must be a number >= 0, got {value!r}")
    return float(value)


class Stream:
    """One source of a mix: a dataset path or URL and how much of each epoch
    it gives. At most one of:

    ``weight``: a relative share of the epoch (``weight / sum of weights``).
    ``repeat``: a multiple of the source's rows, fractional allowed (``0.5``
    takes a random half, ``2.5`` every row twice and a random half a third
    time). ``choose``: an absolute number of samples per epoch. None: each
    row once per epoch.

    ``storage_options``: the object store options of this source's URL;
    ``shuffle``: this source's own shuffle mode (the loader's by default).

    >>> Stream("web/", weight=0.6).weighting()
    ('weight', 0.6)
    """

    def __init__(
        self,
        path: Union[str, "os.PathLike[str]"],
        *,
        weight: Optional[float] = None,
        repeat: Optional[float] = None,
        choose: Optional[int] = None,
        storage_options: Optional[Mapping[str, str]] = None,
        shuffle: Union[bool, str, None] = None,
    ) -> None:
        self.path = os.fspath(path)
        given = [n for n, v in (("weight", weight), ("repeat", repeat), ("choose", choose)) if v is not None]
        if len(given) > 1:
            raise InvalidInputError(f"Stream {self.path!r}: give at most one of weight, repeat and choose, got {', '.join(given)}")
        self.weight = None if weight is None else _non_negative("weight", weight)
        self.repeat = None if repeat is None else _non_negative("repeat", repeat)
        if choose is not None and (isinstance(choose, bool) or not isinstance(choose, int) or choose < 0):
            raise InvalidInputError(f"Stream choose must be a whole number >= 0, got {choose!r}")
        self.choose = choose
        self.storage_options = dict(storage_options) if storage_options is not None else None
        if isinstance(shuffle, bool):
            shuffle = "global" if shuffle else "sequential"
        self.shuffle = shuffle

    def weighting(self) -> Tuple[str, float]:
        """``(kind, value)``: ``weight``, ``repeat``, ``choose`` or ``rows``."""
        if self.weight is not None:
            return "weight", self.weight
        if self.repeat is not None:
            return "repeat", self.repeat
        if self.choose is not None:
            return "choose", float(self.choose)
        return "rows", 0.0

    def __repr__(self) -> str:
        kind, value = self.weighting()
        extra = "" if kind == "rows" else f", {kind}={value:g}"
        return f"Stream({self.path!r}{extra})"
