"""The fitted chain of a model directory: preprocess state -> extract plan -> fusion -> model.

A train directory's ``state/`` holds everything fitted on the train split: the preprocess
state (column kinds, media settings, numeric scaling, classes), the extractors, the fusion and
the model. :class:`FittedChain` loads it once; ``predict``, ``eval`` and its robustness
analysis all go through it, so the steps from preprocessed values to class probabilities are
written in one place::

    chain = FittedChain.load("runs/model")
    blocks = [chain.features(col, values) for col, values in ...]   # extract
    proba = chain.predict_proba(chain.fuse(blocks))                  # fuse, model

Multi-task models (``train.tasks``) also answer :meth:`task_predictions` and
:meth:`task_metrics` for their extra tasks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmcli import artifacts


@dataclass
class FittedChain:
    """Everything fitted for one model directory (see the module docstring)."""

    #: the model directory (a train stage directory, verified)
    stage: artifacts.StageDir
    pstate: object
    #: column -> its fitted extractors, in order
    plan: dict
    fusion: object
    #: the fused columns, in block order
    columns: list[str]
    model: object
    classes: list[str]

    @classmethod
    def load(cls, model_dir: Path, command: str = "mmcli") -> FittedChain:
        """Open (and verify) the train directory ``model_dir`` and load its fitted state;
        ``command`` names the caller in the error of a directory that is not a model."""
        from mmcli.models import load_model
        from mmcli.stages.extract import load_plan
        from mmcli.stages.fuse import load_fusion
        from mmcli.stages.preprocess import PreprocessState

        stage = artifacts.open_stage(model_dir, "train", command)
        state = stage.path / "state"
        fusion, columns = load_fusion(state)
        model, classes = load_model(state / "model")
        return cls(stage, PreprocessState.load(state), load_plan(state / "extract"),
                   fusion, columns, model, classes)

    @property
    def path(self) -> Path:
        return self.stage.path

    def features(self, col: str, values) -> np.ndarray:
        """The feature block of one column's preprocessed ``values`` (as extract makes it)."""
        return np.hstack([e.transform(values) for e in self.plan[col]]).astype(np.float32)

    def fuse(self, blocks: list[np.ndarray], mask: np.ndarray | None = None) -> np.ndarray:
        """The fused matrix of feature blocks given in :attr:`columns` order; ``mask``: the
        presence of each block per row (None: all present; see mmcli.missing)."""
        from mmcli.stages.fuse import fuse_rows

        return fuse_rows(self.fusion, [np.asarray(b) for b in blocks], mask)

    def predict_proba(self, fused, mask: np.ndarray | None = None) -> np.ndarray:
        from mmcli.missing import predict_proba

        return np.asarray(predict_proba(self.model, np.asarray(fused), mask), dtype=np.float64)

    def accuracy(self, blocks: list[np.ndarray], labels: list[str],
                 mask: np.ndarray | None = None) -> float:
        """Accuracy of the chain on feature blocks against the true ``labels``."""
        proba = self.predict_proba(self.fuse(blocks, mask), mask)
        return float(np.mean([self.classes[k] == t for k, t in zip(proba.argmax(1), labels)]))

    def task_predictions(self, fused) -> dict[str, list[str]]:
        """Per extra task of a multi-task model (none for other models): each row's
        predicted class name or value, as text (see :func:`task_predictions`)."""
        return task_predictions(self.model, fused)

    def task_metrics(self, items: list[dict], fused, split: str) -> dict | None:
        """Metrics of the extra tasks on one split (see :func:`task_metrics`)."""
        return task_metrics(self.model, items, fused, split)


def task_predictions(model, X) -> dict[str, list[str]]:
    """Per extra task of a multi-task model (none for other models): each row's predicted
    class name (classification) or value (regression, 6 significant digits), as text for
    the ``prediction_<task>`` columns of predict's and eval's predictions.csv."""
    tasks = getattr(model, "tasks_", None) or []
    if len(tasks) < 2:
        return {}
    pred = model.predict_tasks(np.asarray(X))
    out = {}
    for t in tasks[1:]:
        if t["kind"] == "classification":
            out[t["name"]] = [t["classes"][k] for k in pred[t["name"]].argmax(1)]
        else:
            out[t["name"]] = [f"{v:.6g}" for v in pred[t["name"]]]
    return out


def task_metrics(model, items: list[dict], X, split: str) -> dict | None:
    """For ``eval``: metrics of a multi-task model's extra tasks on one split, or None for a
    single-task model. Classification: accuracy, macro_f1, n, and balanced_accuracy,
    weighted_f1, per_class, confusion_matrix as for the main label; regression: rmse, mae, r2,
    n (items without a value for a task, with a value that is not a finite number, or with a
    class the train split did not have, are left out of that task)."""
    tasks = getattr(model, "tasks_", None)
    if not tasks or len(tasks) < 2:
        return None
    rows = [k for k, it in enumerate(items) if it["split"] == split]
    if not rows:
        return None
    pred = model.predict_tasks(np.asarray(X[rows]))
    out = {}
    for t in tasks[1:]:
        raw = [str((items[k].get("labels") or {}).get(t["name"], "")).strip() for k in rows]
        if t["kind"] == "classification":
            out[t["name"]] = _classification_task(t, raw, pred[t["name"]])
        else:
            out[t["name"]] = _regression_task(raw, pred[t["name"]])
    return out


def _classification_task(task: dict, raw: list[str], scores: np.ndarray) -> dict:
    from mmcli.report.metrics import classification_metrics

    idx = {c: i for i, c in enumerate(task["classes"])}
    keep = [i for i, v in enumerate(raw) if v in idx]
    if not keep:
        return {"n": 0, "accuracy": None, "macro_f1": None}
    guess = scores.argmax(1)[keep]
    return classification_metrics([raw[i] for i in keep], [task["classes"][k] for k in guess],
                                  task["classes"])


def _regression_task(raw: list[str], predicted: np.ndarray) -> dict:
    values = [_finite(v) for v in raw]
    keep = [i for i, v in enumerate(values) if v is not None]
    truth = np.array([values[i] for i in keep])
    err = predicted[keep] - truth
    var = float(truth.var()) if keep else 0.0
    return {"n": len(keep),
            "rmse": float(np.sqrt(np.mean(err ** 2))) if keep else None,
            "mae": float(np.mean(np.abs(err))) if keep else None,
            "r2": float(1 - np.mean(err ** 2) / var) if var > 0 else None}


def _finite(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None
