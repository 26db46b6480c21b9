"""Options shared by several commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

Out = Annotated[Path, typer.Option("--out", "-o", help="Output directory (replaced atomically).")]
Config = Annotated[
    Optional[Path],
    typer.Option("--config", "-c", help="YAML config file; flags override it.", dir_okay=False),
]
Label = Annotated[
    Optional[str], typer.Option("--label", help="Label column [default: label].")
]
Seed = Annotated[Optional[int], typer.Option("--seed", help="Random seed [default: 0].")]
Jobs = Annotated[
    Optional[int], typer.Option("--jobs", "-j", help="Worker processes [default: all cores].")
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")]
