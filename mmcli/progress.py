"""Progress reporting for library code, without any terminal dependency.

Stage functions take an optional ``progress`` factory: ``progress(description, total)`` returns
a context manager with ``advance(n)``. The CLI passes one that draws rich progress bars on a
terminal and prints plain lines otherwise; library callers get silence by default.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol


class Task(Protocol):
    def advance(self, n: int = 1) -> None: ...


class _Silent:
    def advance(self, n: int = 1) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


ProgressFactory = Callable[[str, int], AbstractContextManager[Task]]


def silent(description: str, total: int) -> AbstractContextManager[Task]:
    return _Silent()
