"""Terminal output: messages and progress on stderr; rich on a terminal, plain lines otherwise."""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager

from rich.console import Console

_err = Console(stderr=True, highlight=False, soft_wrap=True)
_out = Console(highlight=False, soft_wrap=True)
_state = {"quiet": False}


def set_quiet(quiet: bool) -> None:
    _state["quiet"] = quiet


def interactive() -> bool:
    return sys.stderr.isatty() and sys.stdout.isatty() and "NO_COLOR" not in os.environ


def info(message: str) -> None:
    if not _state["quiet"]:
        _err.print(message, markup=False)


def result(message: str) -> None:
    """Print a result (a table of metrics, say) to stdout."""
    if not _state["quiet"]:
        _out.print(message, markup=False)


def error(message: str) -> None:
    if interactive():
        _err.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
    else:
        print(f"error: {message}", file=sys.stderr, flush=True)


def progress(description: str, total: int):
    """A :data:`mmcli.progress.ProgressFactory` for the CLI."""
    if _state["quiet"] or total <= 0:
        return _silent()
    if interactive():
        return _rich(description, total)
    return _plain(description, total)


@contextmanager
def _silent():
    class T:
        def advance(self, n: int = 1) -> None:
            pass

    yield T()


@contextmanager
def _rich(description: str, total: int):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                  console=_err, transient=False) as bar:
        task = bar.add_task(description, total=total)

        class T:
            def advance(self, n: int = 1) -> None:
                bar.advance(task, n)

        yield T()


@contextmanager
def _plain(description: str, total: int):
    start = time.monotonic()
    state = {"done": 0, "next": 0.1}

    class T:
        def advance(self, n: int = 1) -> None:
            state["done"] += n
            fraction = state["done"] / total
            if fraction >= state["next"] or state["done"] >= total:
                elapsed = time.monotonic() - start
                eta = elapsed / fraction * (1 - fraction) if fraction > 0 else 0.0
                print(f"{description}: {state['done']}/{total} ({fraction:.0%}) "
                      f"elapsed {elapsed:.1f}s eta {eta:.1f}s", file=sys.stderr, flush=True)
                while state["next"] <= fraction:
                    state["next"] += 0.1

    yield T()
