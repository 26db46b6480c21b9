"""Options shared by several commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def location(value: str | None) -> Path | str | None:
    """A directory or file argument: a local Path, or an fsspec URL kept as text."""
    from mmcli import storage

    if value is None:
        return None
    try:
        return storage.local(value)
    except OSError as exc:
        raise typer.BadParameter(str(exc)) from None


Out = Annotated[str, typer.Option(
    "--out", "-o", callback=location, metavar="DIR",
    help="Output directory (replaced atomically), or an fsspec URL (s3://...: built locally, "
    "then uploaded).")]
Config = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML config file; flags override it.", dir_okay=False),
]
Label = Annotated[
    str | None,
    typer.Option("--label", help="Label column (default: label; later stages: preprocess's)."),
]
Seed = Annotated[int | None, typer.Option("--seed", help="Random seed (default: 0).")]
Jobs = Annotated[
    int | None, typer.Option("--jobs", "-j", help="Worker processes (default: all cores).")
]
Executor = Annotated[
    str | None,
    typer.Option("--executor", metavar="local|dask",
                 help="Where chunks run: local (a process pool; the default) or dask (a Dask "
                 "cluster: --scheduler, or a local one of --jobs workers). Output is the same "
                 "byte for byte; see docs/scaling.md."),
]
Scheduler = Annotated[
    str | None,
    typer.Option("--scheduler", metavar="ADDRESS",
                 help="Dask scheduler address, e.g. tcp://HOST:8786 (with --executor dask)."),
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")]
MediaRoot = Annotated[
    list[Path] | None,
    typer.Option("--media-root", metavar="DIR", file_okay=False,
                 help="Read media only from inside DIR (repeatable); paths leading elsewhere "
                 "through '..', absolute paths or symlinks are refused per item. Use it for "
                 "manifests from untrusted sources."),
]
Track = Annotated[
    bool | None,
    typer.Option("--track/--no-track",
                 help="Log params, metrics, report and leaderboard to MLflow (mmcli[mlflow]; "
                 "default: on when MLFLOW_TRACKING_URI is set). An unreachable server costs a "
                 "warning, never the run."),
]
