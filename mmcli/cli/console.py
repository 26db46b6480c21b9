"""Terminal output: messages and progress on stderr; rich on a terminal, plain lines otherwise."""

from __future__ import annotations

import logging
import os
import sys
import time
from contextlib import contextmanager

from rich.console import Console

_err = Console(stderr=True, highlight=False, soft_wrap=True)
_out = Console(highlight=False, soft_wrap=True)
_DEFAULTS = {"quiet": False, "format": "text", "verbose": False, "strict": False}
#: the output mode of the running invocation (configure sets it, reset puts the defaults back)
_state: dict = dict(_DEFAULTS)
#: the "mmcli" logger's (handlers, propagate, level) before configure changed it
_saved_logger: list = []
PARTIAL_EXIT_CODE = 6  # mmcli.errors.EXIT_CODES


def configure(quiet: bool = False, log_format: str = "text", verbose: bool = False,
              strict: bool = False) -> None:
    """Set the output mode for one invocation (global options of ``mmcli``)."""
    _state.update(quiet=quiet, format=log_format, verbose=verbose, strict=strict)
    logger = logging.getLogger("mmcli")
    if not _saved_logger:
        _saved_logger.append((logger.handlers, logger.propagate, logger.level))
    logger.handlers = [_LogHandler()]
    logger.propagate = False
    logger.setLevel(logging.DEBUG if verbose else logging.WARNING)


def reset() -> None:
    """Undo :func:`configure` when an invocation ends: the default output mode, and the
    "mmcli" logger as it was, so a program that runs the CLI in-process keeps its logging."""
    _state.clear()
    _state.update(_DEFAULTS)
    if _saved_logger:
        logger = logging.getLogger("mmcli")
        logger.handlers, logger.propagate, level = _saved_logger.pop()
        logger.setLevel(level)


def set_quiet(quiet: bool) -> None:
    """A command's own ``--quiet`` (adds to the global one)."""
    if quiet:
        _state["quiet"] = True


def interactive() -> bool:
    return (_state["format"] == "text" and sys.stderr.isatty() and sys.stdout.isatty()
            and "NO_COLOR" not in os.environ)


def _json_line(record: dict) -> None:
    import json

    print(json.dumps(record, ensure_ascii=False, sort_keys=True), file=sys.stderr, flush=True)


def info(message: str) -> None:
    if _state["quiet"]:
        return
    if _state["format"] == "json":
        _json_line({"level": "info", "message": message})
    else:
        _err.print(message, markup=False)


def finish(left_out: int) -> None:
    """With ``--strict``, a stage that left items out exits with the partial-success code."""
    import typer

    if _state["strict"] and left_out > 0:
        error(f"{left_out} item(s) were left out (see failures.csv); exiting "
              f"{PARTIAL_EXIT_CODE} because of --strict", level="warning")
        raise typer.Exit(PARTIAL_EXIT_CODE)


class _LogHandler(logging.Handler):
    """Library log records (logger ``mmcli``) to stderr, as text or JSON lines."""

    def emit(self, record: logging.LogRecord) -> None:
        if _state["quiet"] and record.levelno < logging.ERROR:
            return
        message = record.getMessage()
        if _state["format"] == "json":
            _json_line({"level": record.levelname.lower(), "message": message,
                        "logger": record.name})
        else:
            print(f"{record.levelname.lower()}: {message}", file=sys.stderr, flush=True)


def result(message: str) -> None:
    """Print a result (a table of metrics, say) to stdout."""
    if not _state["quiet"]:
        _out.print(message, markup=False)


def error(message: str, level: str = "error") -> None:
    if _state["format"] == "json":
        _json_line({"level": level, "message": message})
    elif interactive():
        _err.print(f"[bold red]{level}:[/] {message}", markup=True, highlight=False)
    else:
        print(f"{level}: {message}", file=sys.stderr, flush=True)


def progress(description: str, total: int):
    """A :data:`mmcli.progress.ProgressFactory` for the CLI."""
    if _state["quiet"] or total <= 0:
        return _silent()
    if interactive():
        return _rich(description, total)
    if _state["format"] == "json":
        return _plain(description, total, json_lines=True)
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
def _plain(description: str, total: int, json_lines: bool = False):
    start = time.monotonic()
    state = {"done": 0, "next": 0.1}

    class T:
        def advance(self, n: int = 1) -> None:
            state["done"] += n
            fraction = state["done"] / total
            if fraction >= state["next"] or state["done"] >= total:
                elapsed = time.monotonic() - start
                eta = elapsed / fraction * (1 - fraction) if fraction > 0 else 0.0
                if json_lines:
                    _json_line({"level": "info", "event": "progress", "task": description,
                                "done": state["done"], "total": total,
                                "elapsed_s": round(elapsed, 3), "eta_s": round(eta, 3)})
                else:
                    print(f"{description}: {state['done']}/{total} ({fraction:.0%}) "
                          f"elapsed {elapsed:.1f}s eta {eta:.1f}s", file=sys.stderr,
                          flush=True)
                while state["next"] <= fraction:
                    state["next"] += 0.1

    yield T()
