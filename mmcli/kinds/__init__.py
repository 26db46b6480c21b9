"""Modality kinds, one module each, in one registry; see :mod:`mmcli.kinds.base`.

Importing this package registers every built-in kind. To add one, write a module here with a
:class:`~mmcli.kinds.base.Kind` subclass decorated ``@KINDS.register("name")``, import it below,
add ``extract.<name>`` to :class:`mmcli.config.ExtractConfig`, and run the kind contract tests
(``tests/kinds/test_kind_contract.py``), which pick up every registered kind.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable
from itertools import islice

from mmcli.kinds import audio, categorical, image, numeric, text, video  # noqa: F401
from mmcli.kinds.base import KINDS, Kind

__all__ = ["KINDS", "Kind", "get_kind", "kind_names", "media_kinds", "detect_kind"]


@functools.cache
def get_kind(name: str) -> Kind:
    """The kind object of ``name``; an unknown name is a UsageError with "did you mean"."""
    return KINDS.get(name, where="the column kinds")()


def kind_names() -> list[str]:
    """Every registered kind, in pipeline order (also detection order)."""
    return sorted(KINDS.names(), key=lambda n: (KINDS.get(n).order, n))


def media_kinds() -> list[str]:
    return [n for n in kind_names() if get_kind(n).media]


#: cells counted at a time by :func:`detect_kind`
BLOCK_ROWS = 65_536


def detect_kind(values: Iterable[str]) -> str:
    """Guess a column's kind from its values: the first kind, in order, whose detector claims
    the non-empty ones, the fallback kind last (text claims anything, an empty column too).
    The values are read once, a block at a time, each distinct value of a block once."""
    names = sorted(kind_names(), key=lambda n: get_kind(n).fallback)
    detectors = [get_kind(n).detector() for n in names]
    n = 0
    values = iter(values)
    while block := Counter(islice(values, BLOCK_ROWS)):
        for value, count in block.items():
            value = value.strip()
            if value:
                n += count
                for detector in detectors:
                    detector.add(value, count)
    return next(name for name, d in zip(names, detectors) if d.claims(n))


def sniff_media(data: bytes) -> tuple[str, str] | None:
    """(kind, file suffix) of encoded media bytes, from their leading bytes."""
    for name in media_kinds():
        suffix = get_kind(name).sniff(data)
        if suffix is not None:
            return name, suffix
    return None
