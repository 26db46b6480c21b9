"""train: fit a model on the fused train rows (validation rows for early stopping).

Output directory (self-contained: ``predict`` needs nothing else)::

    meta.json
    train_log.jsonl      per-epoch records (models trained in epochs)
    state/               preprocess.json, extract/, fuse/ carried from the fuse directory,
                         and model/ (JSON + npz, no pickle)
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from mmcli import artifacts
from mmcli.config import TrainConfig, to_dict
from mmcli.errors import DataError
from mmcli.progress import ProgressFactory, silent
from mmcli.stages.preprocess import PreprocessState, check_label


def train(fused_dir: Path, out: Path, config: TrainConfig | None = None,
          progress: ProgressFactory = silent) -> dict:
    """Train ``config.model`` on the fused features; returns a summary with accuracies."""
    from mmcli.models import build_model, save_model

    config = config or TrainConfig()
    fused = artifacts.open_stage(fused_dir, "fuse", "mmcli train")
    pstate = PreprocessState.load(fused.path / "state")
    check_label(pstate, config.label, fused.path)
    classes = pstate.classes
    if len(classes) < 2:
        raise DataError(f"the train split of {fused.path} has {len(classes)} class(es)",
                        "a classifier needs at least two labels in train")
    items = artifacts.read_jsonl(fused.path / "items.jsonl")
    X = artifacts.load_npy(fused.path / "fused.npy")
    index = {c: k for k, c in enumerate(classes)}
    tr = [k for k, it in enumerate(items) if it["split"] == "train"]
    va = [k for k, it in enumerate(items) if it["split"] == "val" and it["label"] in index]
    y = np.array([index[items[k]["label"]] for k in tr], dtype=np.int64)
    y_val = np.array([index[items[k]["label"]] for k in va], dtype=np.int64)

    model = build_model(config.model, config.params, config.seed, config.device)
    with progress(f"train {config.model}", 1) as bar:
        model.fit(np.asarray(X[tr]), y, len(classes), np.asarray(X[va]) if va else None,
                  y_val if va else None)
        bar.advance()

    with artifacts.StageWriter(out, "train", (fused.path,)) as writer:
        shutil.copytree(fused.path / "state", writer.path / "state")
        save_model(model, writer.path / "state" / "model", classes)
        artifacts.write_jsonl(writer.path / "train_log.jsonl", model.log_)
        summary = {"model": config.model, "classes": classes, "n_train": len(tr),
                   "n_val": len(va),
                   "train_accuracy": _accuracy(model, X, tr, y),
                   "val_accuracy": _accuracy(model, X, va, y_val) if va else None}
        writer.commit(to_dict(config), config.seed, {str(fused.path): fused.meta_hash()}, summary)
    return summary


def _accuracy(model, X, rows, y) -> float:
    proba = model.predict_proba(np.asarray(X[rows]))
    return float((proba.argmax(1) == y).mean())
