"""The block description: what a fusion and a model are told about the modality blocks.

A concat fuse directory keeps each modality's features side by side; its ``fusion.json``
``blocks`` list says, per modality, the column, the column range in ``fused.npy`` and, when the
column's extractor gives a structured row (pixels, frames, tokens), that structure
(``layout``, ``shape``, ``vocab``). :class:`Blocks` carries exactly that, plus the fusion's
train normalisation of each block (``norm``: augmentation works in the extractor's units),
and is passed to ``Model.fit(..., blocks=...)``: a model reads its blocks from its input,
never from attributes set on it beforehand.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class Block:
    """One modality block: ``X[:, start:stop]``."""

    start: int
    stop: int
    #: the manifest column, or None for blocks described by their range only
    column: str | None = None
    #: {"layout", "shape", "vocab"} for a structured row; empty for a plain vector
    structure: dict = dataclasses.field(default_factory=dict)
    #: the fusion's train (mean, scale) of this block; training only, never saved
    norm: tuple[np.ndarray, np.ndarray] | None = dataclasses.field(default=None, compare=False)

    @property
    def width(self) -> int:
        return self.stop - self.start

    @property
    def layout(self) -> str | None:
        return self.structure.get("layout")

    def info(self) -> dict:
        """The block's column and structure, as saved in a model's state (``layouts``)."""
        return {"column": self.column, **self.structure}


@dataclasses.dataclass(frozen=True)
class Blocks(Sequence):
    """The modality blocks of a concat fusion, in column order (a sequence of :class:`Block`)."""

    items: tuple[Block, ...]

    # --- making one -----------------------------------------------------------------------
    @classmethod
    def from_ranges(cls, ranges, layouts: list[dict] | None = None,
                    norms: list | None = None) -> Blocks:
        """From ``[(start, stop)]``, with per block ``{"column", **structure}`` and (mean,
        scale) when known (a model's saved state has ranges and layouts, no norms)."""
        n = len(ranges)
        layouts = layouts or [None] * n
        norms = norms or [None] * n
        items = []
        for (a, z), info, norm in zip(ranges, layouts, norms):
            info = dict(info or {})
            column = info.pop("column", None)
            items.append(Block(int(a), int(z), column, info,
                               None if norm is None else (norm[0], norm[1])))
        return cls(tuple(items))

    @classmethod
    def from_fusion(cls, entries: list[dict], norms: list | None = None) -> Blocks:
        """From the ``blocks`` of a ``fusion.json`` (``{column, start, stop, **structure}``)."""
        ranges = [(e["start"], e["stop"]) for e in entries]
        layouts = [{k: v for k, v in e.items() if k not in ("start", "stop")} for e in entries]
        return cls.from_ranges(ranges, layouts, norms)

    # --- reading one ----------------------------------------------------------------------
    def __getitem__(self, k):
        return self.items[k]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Block]:
        return iter(self.items)

    @property
    def ranges(self) -> list[tuple[int, int]]:
        return [(b.start, b.stop) for b in self.items]

    @property
    def width(self) -> int:
        """The number of features the blocks cover."""
        return self.items[-1].stop if self.items else 0

    @property
    def layouts(self) -> list[dict] | None:
        """Per block ``{"column", **structure}``; None when the blocks are bare ranges."""
        if all(b.column is None and not b.structure for b in self.items):
            return None
        return [b.info() for b in self.items]

    @property
    def norms(self) -> list[tuple[np.ndarray, np.ndarray]] | None:
        """Per block the fusion's (mean, scale); None unless every block has one."""
        if not self.items or any(b.norm is None for b in self.items):
            return None
        return [b.norm for b in self.items]

    def subset(self, keep: list[int]) -> Blocks:
        """The blocks ``keep`` (positions, in that order) of ``X[:, concatenated columns]``."""
        start, items = 0, []
        for k in keep:
            b = self.items[k]
            items.append(dataclasses.replace(b, start=start, stop=start + b.width))
            start += b.width
        return Blocks(tuple(items))


def as_blocks(blocks) -> Blocks | None:
    """``blocks`` as :class:`Blocks`: None, a Blocks, or bare ``[(start, stop)]`` ranges."""
    if blocks is None or isinstance(blocks, Blocks):
        return blocks
    return Blocks.from_ranges(list(blocks))
