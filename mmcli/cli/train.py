from __future__ import annotations

from typing import Annotated

import typer

from mmcli.cli import console, options
from mmcli.cli.errors import handle_errors


@handle_errors
def command(
    fused_dir: Annotated[
        str, typer.Argument(metavar="FUSED_DIR", callback=options.location,
                            help="Directory written by `mmcli fuse`. A path or an fsspec URL.")
    ],
    out: options.Out,
    model: Annotated[str | None, typer.Option(
        "--model", help="logreg, linear_svm, random_forest, hist_gb, mlp, late_repr, "
        "late_decision, gmu, lowrank, attention or tensor_layer (default: auto = "
        "late_decision on a concat fuse directory, else logreg; see docs/models.md).")] = None,
    device: Annotated[str | None, typer.Option(
        "--device", help="auto (a GPU when present), cpu or cuda (default: auto).")] = None,
    config: options.Config = None,
    label: options.Label = None,
    seed: options.Seed = None,
    quiet: options.Quiet = False,
) -> None:
    """Train a classifier on the fused features (val split for early stopping).

    Learned-fusion models (late_repr, late_decision, gmu, lowrank, attention,
    tensor_layer) need a concat fuse directory. With train.params.encoder:
    auto they read pixels blocks with a CNN, frames with a GRU and tokens
    with a Transformer. Training controls, augmentation (train.params.augment),
    search (train.search) and extra tasks (train.tasks) go in the config file.
    The output directory is self-contained: predict needs nothing else.

    Example:

        mmcli train runs/demo/fused -o runs/demo/model --model gmu --device cpu
    """
    from mmcli.config import TrainConfig, build, read_config_file
    from mmcli.stages.train import train

    console.set_quiet(quiet)
    cfg = build(TrainConfig, read_config_file(config), "train",
                {"model": model, "device": device, "label": label, "seed": seed})
    s = train(fused_dir, out, cfg, console.progress)
    val = f"{s['val_accuracy']:.3f}" if s["val_accuracy"] is not None else "n/a"
    console.info(f"train: {s['model']} on {s['n_train']} items; train accuracy "
                 f"{s['train_accuracy']:.3f}, val accuracy {val}")
    if s.get("search"):
        console.info(f"search: best {s['search']['best_params']} (cv macro-F1 "
                     f"{s['search']['best_score']:.3f})")
    for name, m in (s.get("tasks") or {}).items():
        console.info(f"task {name}: " + ", ".join(
            f"{k} {v:.3f}" for k, v in m.items() if v is not None))
    console.info(f"wrote {out}")
