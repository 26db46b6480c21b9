from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mmcli.cli import console, options
from mmcli.cli.errors import handle_errors


@handle_errors
def command(
    model_dir: Annotated[
        Path, typer.Argument(metavar="MODEL_DIR", help="Directory written by `mmcli train`.")
    ],
    fused_dir: Annotated[
        Path, typer.Argument(metavar="FUSED_DIR", help="Directory written by `mmcli fuse`.")
    ],
    out: options.Out,
    config: options.Config = None,
    label: options.Label = None,
    quiet: options.Quiet = False,
) -> None:
    """Score a model on every split: metrics.json, report.md and predictions.csv.

    Example:

        mmcli eval runs/demo/model runs/demo/fused -o runs/demo/eval
    """
    from mmcli.config import EvalConfig, build, read_config_file
    from mmcli.stages.evaluate import evaluate

    console.set_quiet(quiet)
    cfg = build(EvalConfig, read_config_file(config), "eval", {"label": label})
    metrics = evaluate(model_dir, fused_dir, out, cfg, console.progress)
    lines = ["split   n     accuracy  balanced_acc  macro_f1"]
    for split, m in metrics.items():
        lines.append(f"{split:<7} {m['n']:<5} {m['accuracy']:<9.3f} "
                     f"{m['balanced_accuracy']:<13.3f} {m['macro_f1']:.3f}")
    console.result("\n".join(lines))
    console.info(f"wrote {out} (report: {out / 'report.md'})")
