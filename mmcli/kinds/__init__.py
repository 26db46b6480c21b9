"""Modality kinds, one module each, in one registry; see :mod:`mmcli.kinds.base`.

Importing this package registers every built-in kind. To add one, write a module here with a
:class:`~mmcli.kinds.base.Kind` subclass decorated ``@KINDS.register("name")``, import it below,
add ``extract.<name>`` to :class:`mmcli.config.ExtractConfig`, and run the kind contract tests
(``tests/kinds/test_kind_contract.py``), which pick up every registered kind.
"""

from __future__ import annotations

import functools

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


def detect_kind(values: list[str]) -> str:
    """Guess a column's kind from its values: the first kind, in order, that claims the
    non-empty ones, the fallback kind last (text claims anything, an empty column too)."""
    present = [v.strip() for v in values if v.strip()]
    names = sorted(kind_names(), key=lambda n: get_kind(n).fallback)
    return next(n for n in names if get_kind(n).detect(present))


def sniff_media(data: bytes) -> tuple[str, str] | None:
    """(kind, file suffix) of encoded media bytes, from their leading bytes."""
    for name in media_kinds():
        suffix = get_kind(name).sniff(data)
        if suffix is not None:
            return name, suffix
    return None
