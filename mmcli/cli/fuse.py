from __future__ import annotations

from typing import Annotated

import typer

from mmcli.cli import console, options
from mmcli.cli.errors import handle_errors


@handle_errors
def command(
    feat_dir: Annotated[
        str, typer.Argument(metavar="FEAT_DIR", callback=options.location,
                            help="Directory written by `mmcli extract`. A path or an fsspec URL.")
    ],
    out: options.Out,
    method: Annotated[str | None, typer.Option(
        "--method", "-m", help="concat, product, sum or tensor (default: concat).")] = None,
    dim: Annotated[int | None, typer.Option(
        "--dim", help="Common dimension for product, sum and tensor.")] = None,
    modalities: Annotated[str | None, typer.Option(
        "--modalities", help="Comma-separated columns to fuse (default: all).")] = None,
    config: options.Config = None,
    label: options.Label = None,
    seed: options.Seed = None,
    quiet: options.Quiet = False,
) -> None:
    """Combine the modality features into one matrix.

    Example:

        mmcli fuse runs/demo/feat -o runs/demo/fused --method concat
    """
    from mmcli.config import FuseConfig, build, read_config_file
    from mmcli.stages.fuse import fuse

    console.set_quiet(quiet)
    mods = [m.strip() for m in modalities.split(",") if m.strip()] if modalities else None
    cfg = build(FuseConfig, read_config_file(config), "fuse",
                {"method": method, "dim": dim, "modalities": mods, "label": label,
                 "seed": seed})
    s = fuse(feat_dir, out, cfg, console.progress)
    console.info(f"fuse: {s['method']} of {', '.join(s['modalities'])} -> {s['dim']} features "
                 f"for {s['items']} items")
    console.info(f"wrote {out}")
