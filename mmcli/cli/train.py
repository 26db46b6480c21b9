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
        "late_decision, gmu, lowrank, attention, tensor_layer or subset (default: auto = "
        "candidates scored by cross-validation on the train split, the best refitted; "
        "leaderboard.csv; see docs/models.md).")] = None,
    time_limit: Annotated[float | None, typer.Option(
        "--time-limit", metavar="SECONDS",
        help="model auto: the search's budget in estimated seconds of one core (from the "
        "data's shape, so the same on every machine); 0: none (default: 600).")] = None,
    device: Annotated[str | None, typer.Option(
        "--device", help="auto (a GPU when present), cpu or cuda (default: auto).")] = None,
    config: options.Config = None,
    label: options.Label = None,
    seed: options.Seed = None,
    track: options.Track = None,
    quiet: options.Quiet = False,
) -> None:
    """Train a classifier on the fused features (val split for early stopping).

    By default (--model auto) a set of candidates (logistic regression, late
    decision fusion, linear SVM, gradient boosting, MLP, encoders where blocks
    have a shape) is scored by cross-validation on the train split (group
    folds with preprocess --group; the val split instead when the manifest's
    split column gave one), the best is refitted, and the leaderboard is
    printed and written to leaderboard.csv. A setting that can no longer win is
    stopped between folds (the same choice), and a killed train resumes.

    Learned-fusion models (late_repr, late_decision, gmu, lowrank, attention,
    tensor_layer) need a concat fuse directory. With train.params.encoder:
    auto they read pixels blocks with a CNN, frames with a GRU and tokens
    with a Transformer. Training controls, augmentation (train.params.augment),
    search (train.search) and extra tasks (train.tasks) go in the config file.
    The output directory is self-contained: predict needs nothing else.

    Example:

        mmcli train runs/demo/fused -o runs/demo/model --time-limit 60

        mmcli train runs/demo/fused -o runs/demo/model --model gmu --device cpu
    """
    from mmcli.config import TrainConfig, build, read_config_file
    from mmcli.stages.train import train

    console.set_quiet(quiet)
    cfg = build(TrainConfig, read_config_file(config), "train",
                {"model": model, "device": device, "label": label, "seed": seed,
                 "time_limit": time_limit})
    from mmcli.tracking import Tracker

    with Tracker(f"mmcli train {out}", "train", track) as tracker:
        s = train(fused_dir, out, cfg, console.progress)
        tracker.log_stage(out)
    print_summary(s, out)


def print_summary(s: dict, out: str) -> None:
    """What train prints: the leaderboard of model auto (stdout), then the model's
    accuracies, the search's best, the extra tasks and the output (stderr)."""
    if s.get("selection"):
        console.result(leaderboard_table(s["selection"]))
        cut = sum(1 for row in s["selection"]["leaderboard"]
                  if "skipped: time limit" in row["note"])
        if cut:
            console.error(f"model selection reached its time limit: {cut} settings were not "
                          "scored (the estimate is the same on every machine, so is the "
                          "choice); raise --time-limit (0: none) to score them",
                          level="warning")
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


def leaderboard_table(selection: dict) -> str:
    """The leaderboard of model auto as aligned text, with each candidate's fit seconds."""
    rows = selection["leaderboard"]
    header = ["rank", "model", "params", "score", "std", "fit s", ""]
    lines = [header]
    for row in rows:
        seconds = row.get("fit_seconds")
        lines.append([str(row["rank"]), row["model"], row["params"], row["cv_score"],
                      row["cv_std"], "" if seconds is None else f"{seconds:.1f}",
                      ("chosen " if row["chosen"] else "") + row["note"]])
    widths = [max(len(line[k]) for line in lines) for k in range(len(header))]
    resumed = (f"; {selection['resumed']} fold scores resumed from a killed run"
               if selection.get("resumed") else "")
    estimated = (f", estimated {selection['estimated_seconds']:.0f} s of one core"
                 if selection.get("estimated_seconds") else "")
    text = [f"model selection ({selection['validation']}, macro-F1; "
            f"{selection.get('seconds', 0):.1f} s{estimated}{resumed}):"]
    text += ["  " + "  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip()
             for line in lines]
    return "\n".join(text)
