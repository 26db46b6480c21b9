from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mmcli.cli import console, options
from mmcli.cli.errors import handle_errors


@handle_errors
def command(
    model_dir: Annotated[
        str, typer.Argument(metavar="MODEL_DIR", callback=options.location,
                            help="Directory written by `mmcli train`. A path or an fsspec URL.")
    ],
    fused_dir: Annotated[
        str, typer.Argument(metavar="FUSED_DIR", callback=options.location,
                            help="Directory written by `mmcli fuse`. A path or an fsspec URL.")
    ],
    out: options.Out,
    compare: Annotated[
        list[str] | None,
        typer.Option("--compare", metavar="MODEL_DIR[:FUSED_DIR]",
                     help="Another model to put side by side in the report (repeatable); "
                          "without :FUSED_DIR, the fuse directory it was trained from."),
    ] = None,
    robustness: Annotated[
        bool | None,
        typer.Option("--robustness/--no-robustness",
                     help="Modality ablation and noise robustness on the test split "
                          "(default: on)."),
    ] = None,
    config: options.Config = None,
    label: options.Label = None,
    seed: options.Seed = None,
    track: options.Track = None,
    quiet: options.Quiet = False,
) -> None:
    """Score a model on every split: metrics.json, report.html (figures, robustness, data
    summary, configuration), report.md, figures/ and predictions.csv.

    Example:

        mmcli eval runs/demo/model runs/demo/fused -o runs/demo/eval

        mmcli eval runs/m1 runs/fused1 --compare runs/m2 --compare runs/m3:runs/f3 -o runs/cmp
    """
    from mmcli.config import EvalConfig, build, read_config_file
    from mmcli.stages.evaluate import evaluate

    console.set_quiet(quiet)
    cfg = build(EvalConfig, read_config_file(config), "eval",
                {"label": label, "seed": seed, "robustness": robustness})
    pairs = []
    for value in compare or []:
        model, sep, fused = value.rpartition(":") if ":" in value else (value, "", "")
        pairs.append((Path(model), Path(fused) if sep else None))
    from mmcli.tracking import Tracker

    with Tracker(f"mmcli eval {out}", "eval", track) as tracker:
        metrics = evaluate(model_dir, fused_dir, out, cfg, console.progress, pairs)
        tracker.log_stage(out)
    lines = ["split   n     accuracy  balanced_acc  macro_f1"]
    for split, m in metrics.items():
        lines.append(f"{split:<7} {m['n']:<5} {m['accuracy']:<9.3f} "
                     f"{m['balanced_accuracy']:<13.3f} {m['macro_f1']:.3f}")
    console.result("\n".join(lines))
    console.info(f"wrote {out} (report: {out}/report.md; open {out}/report.html in a "
                 "browser)")
