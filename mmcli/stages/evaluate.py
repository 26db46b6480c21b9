"""eval: metrics per split, a readable report and per-item predictions.

Output directory::

    meta.json
    metrics.json        {"<split>": {accuracy, balanced_accuracy, macro_f1, weighted_f1, n,
                         per_class: {label: {precision, recall, f1, support}},
                         confusion_matrix: {labels, matrix}}}
    report.md           the same as tables
    predictions.csv     id, split, label, prediction, prob_<class>... for every item
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from mmcli import artifacts
from mmcli.config import EvalConfig, to_dict
from mmcli.errors import ArtifactError, DataError, UsageError
from mmcli.progress import ProgressFactory, silent
from mmcli.stages.preprocess import PreprocessState, check_label


def evaluate(model_dir: Path, fused_dir: Path, out: Path, config: EvalConfig | None = None,
             progress: ProgressFactory = silent) -> dict:
    """Evaluate a trained model on the splits of a fuse directory; returns the metrics."""
    from mmcli.models import load_model

    config = config or EvalConfig()
    unknown = [s for s in config.splits if s not in ("train", "val", "test")]
    if unknown or not config.splits:
        raise UsageError(f"config 'eval.splits' is {config.splits!r}",
                         "list one or more of train, val, test")
    model_stage = artifacts.open_stage(model_dir, "train", "mmcli eval")
    fused = artifacts.open_stage(fused_dir, "fuse", "mmcli eval")
    check_same_fusion(model_stage.path, fused.path)
    check_label(PreprocessState.load(fused.path / "state"), config.label, fused.path)
    model, classes = load_model(model_stage.path / "state" / "model")
    items = artifacts.read_jsonl(fused.path / "items.jsonl")
    X = artifacts.load_npy(fused.path / "fused.npy")
    with progress("eval", len(items)) as bar:
        proba = model.predict_proba(np.asarray(X))
        bar.advance(len(items))
    pred = [classes[k] for k in proba.argmax(1)]

    metrics = {}
    for split in config.splits:
        rows = [k for k, it in enumerate(items) if it["split"] == split]
        if rows:
            metrics[split] = classification_metrics(
                [items[k]["label"] for k in rows], [pred[k] for k in rows], classes)
    if "test" in config.splits and "test" not in metrics:
        raise DataError(f"{fused.path} has no test items to evaluate",
                        "give some rows split=test, or raise preprocess.split.test")
    if not metrics:
        raise DataError(f"{fused.path} has no items in the splits {config.splits!r}",
                        "choose other eval.splits")

    with artifacts.StageWriter(out, "eval", (model_stage.path, fused.path)) as writer:
        artifacts.write_json(writer.path / "metrics.json", metrics)
        _write_predictions(writer.path / "predictions.csv", items, pred, proba, classes)
        fusion = artifacts.read_json(fused.path / "fusion.json")
        (writer.path / "report.md").write_text(
            render_report(metrics, model_stage.meta, fusion), encoding="utf-8")
        writer.commit(to_dict(config), None, {str(model_stage.path): model_stage.meta_hash(),
                                              str(fused.path): fused.meta_hash()},
                      {s: {k: m[k] for k in ("accuracy", "macro_f1", "n")}
                       for s, m in metrics.items()})
    return metrics


def check_same_fusion(model_path: Path, fused_path: Path) -> None:
    """Refuse to evaluate a model on features fused by another fitted pipeline."""
    for rel in ("fuse/fuse.json", "fuse/fuse.npz"):
        a, b = model_path / "state" / rel, fused_path / "state" / rel
        if a.exists() != b.exists() or (a.exists() and
                                        artifacts.sha256_file(a) != artifacts.sha256_file(b)):
            raise ArtifactError(
                f"{fused_path} was not made by the pipeline that {model_path} was trained on",
                "evaluate on the fuse directory that the model was trained from",
            )


def classification_metrics(y_true: list[str], y_pred: list[str], classes: list[str]) -> dict:
    import warnings

    labels = list(classes) + sorted(set(y_true) - set(classes))
    with warnings.catch_warnings():
        # a split without every class is normal (small test sets); its scores say so already
        warnings.simplefilter("ignore", UserWarning)
        return _metrics(y_true, y_pred, labels)


def _metrics(y_true: list[str], y_pred: list[str], labels: list[str]) -> dict:
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        confusion_matrix,
        f1_score,
        precision_recall_fscore_support,
    )

    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0)
    present = [k for k, s in enumerate(support) if s > 0]
    return {
        "n": len(y_true),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=[labels[k] for k in present],
                                   average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(y_true, y_pred, labels=labels, average="weighted",
                                      zero_division=0)),
        "per_class": {
            label: {"precision": float(precision[k]), "recall": float(recall[k]),
                    "f1": float(f1[k]), "support": int(support[k])}
            for k, label in enumerate(labels)
        },
        "confusion_matrix": {
            "labels": labels,
            "matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        },
    }


def _write_predictions(path: Path, items, pred, proba, classes) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["id", "split", "label", "prediction", *(f"prob_{c}" for c in classes)])
        for it, p, row in zip(items, pred, proba):
            writer.writerow([it["id"], it["split"], it["label"], p, *(f"{v:.6f}" for v in row)])


def render_report(metrics: dict, model_meta: dict, fusion: dict) -> str:
    cfg = model_meta["config"]
    lines = [
        "# mmcli evaluation report",
        "",
        f"- model: `{cfg['model']}` (seed {cfg['seed']})",
        f"- fusion: `{fusion['method']}` of {', '.join(f'`{m}`' for m in fusion['modalities'])}"
        f" ({fusion['dim']} features)",
        "",
        "## Metrics per split",
        "",
        "| split | n | accuracy | balanced accuracy | macro F1 | weighted F1 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for split, m in metrics.items():
        lines.append(f"| {split} | {m['n']} | {m['accuracy']:.3f} | "
                     f"{m['balanced_accuracy']:.3f} | {m['macro_f1']:.3f} | "
                     f"{m['weighted_f1']:.3f} |")
    for split in [s for s in ("test",) if s in metrics] or list(metrics)[-1:]:
        m = metrics[split]
        lines += ["", f"## Per class ({split})", "",
                  "| class | precision | recall | F1 | support |", "|---|---:|---:|---:|---:|"]
        for label, c in m["per_class"].items():
            lines.append(f"| {label} | {c['precision']:.3f} | {c['recall']:.3f} | "
                         f"{c['f1']:.3f} | {c['support']} |")
        cm = m["confusion_matrix"]
        lines += ["", f"## Confusion matrix ({split}; rows: true, columns: predicted)", "",
                  "| true \\ predicted | " + " | ".join(cm["labels"]) + " |",
                  "|---|" + "---:|" * len(cm["labels"])]
        for label, row in zip(cm["labels"], cm["matrix"]):
            lines.append(f"| {label} | " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines) + "\n"
