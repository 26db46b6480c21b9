"""Name -> component registries with "did you mean" on typos.

Every pluggable family (extractors, fusion methods, models) is a :class:`Registry`; a new
component is one class with one decorator::

    @EXTRACTORS.register("color_hist", kind="image")
    class ColorHistogram(Extractor): ...

Keywords after the name are tags (``kind`` of an extractor), read back with :meth:`tags` and
used to filter :meth:`names`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Generic, TypeVar

from mmcli.errors import UsageError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, family: str):
        #: what the components are, for messages ("model", "fusion method", "extractor")
        self.family = family
        self._items: dict[str, T] = {}
        self._tags: dict[str, dict] = {}

    def register(self, name: str, **tags) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.family} {name!r} is registered twice")
            self._items[name] = obj
            self._tags[name] = tags
            obj.name = name  # type: ignore[attr-defined]
            return obj

        return decorator

    def get(self, name: str, where: str = "") -> T:
        if name in self._items:
            return self._items[name]
        close = difflib.get_close_matches(name, self._items, n=1)
        hint = (f"did you mean {close[0]!r}?" if close
                else f"choose one of: {', '.join(self.names())}")
        place = f" in {where}" if where else ""
        raise UsageError(f"unknown {self.family} {name!r}{place}", hint)

    def tags(self, name: str) -> dict:
        return self._tags[name]

    def names(self, **tags) -> list[str]:
        return sorted(
            n for n, t in self._tags.items() if all(t.get(k) == v for k, v in tags.items())
        )

    def __contains__(self, name: str) -> bool:
        return name in self._items
