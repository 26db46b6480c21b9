from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mmcli.cli import console, options
from mmcli.cli.errors import handle_errors


@handle_errors
def command(
    pre_dir: Annotated[
        Path, typer.Argument(metavar="PRE_DIR", help="Directory written by `mmcli preprocess`.")
    ],
    out: options.Out,
    config: options.Config = None,
    label: options.Label = None,
    seed: options.Seed = None,
    jobs: options.Jobs = None,
    quiet: options.Quiet = False,
) -> None:
    """Compute per-modality features, fitted on the train split only.

    Defaults: images color_hist + pixels, audio mfcc, text tfidf + word2vec, numeric values,
    categorical one-hot; choose others in the config's extract section.

    Example:

        mmcli extract runs/demo/pre -o runs/demo/feat
    """
    from mmcli.config import ExtractConfig, build, read_config_file
    from mmcli.stages.extract import extract

    console.set_quiet(quiet)
    cfg = build(ExtractConfig, read_config_file(config), "extract",
                {"label": label, "seed": seed, "jobs": jobs})
    s = extract(pre_dir, out, cfg, console.progress)
    dims = ", ".join(f"{c} {d}" for c, d in s["blocks"].items())
    console.info(f"extract: {s['items']} items; feature dimensions: {dims}")
    console.info(f"wrote {out}")
