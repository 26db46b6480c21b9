"""Metrics on arrays: classification (labels and probabilities), bootstrap intervals, regression.

Everything here is a plain function of numpy arrays or label lists, so it is usable outside the
pipeline. Definitions (also in docs/evaluation.md):

* ``macro_f1``: scikit-learn's macro F1 over the model's classes, a class neither in the split
  nor predicted (F1 0/0) left out (:func:`macro_f1`); per-class scores that are 0/0 are
  ``None``; balanced accuracy is the mean recall over the classes present in the split.
* ``roc_auc_macro``: one-vs-rest ROC-AUC averaged over the classes that have both positives and
  negatives in the split (a class absent from a small test split has no AUC; it is left out of
  the mean and reported as ``null``).
* ``log_loss``: mean of ``-ln p(true class)``, probabilities clipped to ``[1e-15, 1]``; an item
  whose label the model never saw in training gets ``p = 1e-15``.
* ``expected_calibration_error``: top-label ECE with ``ECE_BINS`` (15) equal-width confidence
  bins ``(0, 1/15], (1/15, 2/15], ...``: ``sum_b n_b / n * |accuracy_b - mean confidence_b|``
  (Guo et al., "On Calibration of Modern Neural Networks", ICML 2017).
* bootstrap intervals: percentile intervals from ``resamples`` seeded resamples of the items
  with replacement (vectorised: one ``bincount`` per batch of resamples).
"""

from __future__ import annotations

import warnings

import numpy as np

ECE_BINS = 15
EPS = 1e-15


# --- from labels ---------------------------------------------------------------------------


def classification_metrics(y_true: list[str], y_pred: list[str], classes: list[str]) -> dict:
    """Accuracy, balanced accuracy, macro and weighted F1, per-class scores, confusion matrix.

    ``classes`` are the model's classes; labels of the split that the model never saw are
    appended after them. Every score is scikit-learn's over these labels, a score that is 0/0
    for a class being undefined (``None`` per class) and left out of the averages (see
    :func:`macro_f1`); balanced accuracy is the mean recall of the classes present in the split.
    """
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        confusion_matrix,
        f1_score,
        precision_recall_fscore_support,
    )

    labels = list(classes) + sorted((set(y_true) | set(y_pred)) - set(classes))
    with warnings.catch_warnings():
        # a split without every class is normal (small test sets); its scores say so already
        warnings.simplefilter("ignore", UserWarning)
        precision, recall, f1, support = precision_recall_fscore_support(
            y_true, y_pred, labels=labels, zero_division=np.nan)
        return {
            "n": len(y_true),
            "accuracy": float(accuracy_score(y_true, y_pred)),
            "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
            "macro_f1": macro_f1(y_true, y_pred, labels),
            "weighted_f1": float(f1_score(y_true, y_pred, labels=labels, average="weighted",
                                          zero_division=np.nan)),
            "per_class": {
                label: {"precision": _defined(precision[k]), "recall": _defined(recall[k]),
                        "f1": _defined(f1[k]), "support": int(support[k])}
                for k, label in enumerate(labels)
            },
            "confusion_matrix": {
                "labels": labels,
                "matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
            },
        }


def macro_f1(y_true, y_pred, labels) -> float:
    """Macro F1, the one definition mmcli uses (eval, its bootstrap, train.search):
    scikit-learn's ``f1_score(average="macro", labels=labels, zero_division=nan)`` with
    ``labels`` every class of the model (and any label of the split it never saw). A class
    that is neither in ``y_true`` nor predicted has no F1 (0/0) and is left out of the mean;
    a predicted class absent from ``y_true`` counts, with F1 0. The value equals scikit-learn's
    default ``f1_score(y_true, y_pred, average="macro")``."""
    from sklearn.metrics import f1_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return float(f1_score(y_true, y_pred, labels=labels, average="macro",
                              zero_division=np.nan))


def _defined(value) -> float | None:
    return None if np.isnan(value) else float(value)


# --- from probabilities ----------------------------------------------------------------------


def one_hot(y_true: list[str], classes: list[str]) -> np.ndarray:
    """(n, K) indicator of each item's label among ``classes`` (all zero for an unseen label)."""
    index = {c: k for k, c in enumerate(classes)}
    out = np.zeros((len(y_true), len(classes)), dtype=bool)
    for i, label in enumerate(y_true):
        if label in index:
            out[i, index[label]] = True
    return out


def roc_auc_per_class(y_true: list[str], proba: np.ndarray, classes: list[str]) -> list:
    """One-vs-rest ROC-AUC per class; ``None`` where the split lacks positives or negatives."""
    from sklearn.metrics import roc_auc_score

    truth = one_hot(y_true, classes)
    out: list = []
    for k in range(len(classes)):
        pos = int(truth[:, k].sum())
        out.append(float(roc_auc_score(truth[:, k], proba[:, k]))
                   if 0 < pos < len(y_true) else None)
    return out


def average_precision_per_class(y_true: list[str], proba: np.ndarray,
                                classes: list[str]) -> list:
    """Area under the precision-recall curve (average precision) per class; ``None`` without
    positives."""
    from sklearn.metrics import average_precision_score

    truth = one_hot(y_true, classes)
    return [float(average_precision_score(truth[:, k], proba[:, k])) if truth[:, k].any()
            else None for k in range(len(classes))]


def mean_defined(values: list) -> float | None:
    defined = [v for v in values if v is not None]
    return float(np.mean(defined)) if defined else None


def log_loss(y_true: list[str], proba: np.ndarray, classes: list[str]) -> float:
    truth = one_hot(y_true, classes)
    p = np.where(truth.any(1), (np.asarray(proba, dtype=np.float64) * truth).sum(1), 0.0)
    return float(-np.log(np.clip(p, EPS, 1.0)).mean())


def calibration_bins(confidence: np.ndarray, correct: np.ndarray,
                     bins: int = ECE_BINS) -> dict:
    """Per equal-width bin of top-label confidence: count, mean confidence, accuracy."""
    confidence = np.asarray(confidence, dtype=np.float64)
    index = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    count = np.bincount(index, minlength=bins)
    conf_sum = np.bincount(index, weights=confidence, minlength=bins)
    correct_sum = np.bincount(index, weights=np.asarray(correct, dtype=np.float64),
                              minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"edges": np.linspace(0, 1, bins + 1), "count": count,
                "confidence": conf_sum / count, "accuracy": correct_sum / count}


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray,
                               bins: int = ECE_BINS) -> float:
    b = calibration_bins(confidence, correct, bins)
    used = b["count"] > 0
    n = max(int(b["count"].sum()), 1)
    return float((b["count"][used] / n
                  * np.abs(b["accuracy"][used] - b["confidence"][used])).sum())


def probabilistic_metrics(y_true: list[str], proba: np.ndarray, classes: list[str]) -> dict:
    """ROC-AUC (macro one-vs-rest), average precision, log-loss and ECE of one split."""
    proba = np.asarray(proba, dtype=np.float64)
    pred = proba.argmax(1)
    correct = np.array([classes[k] == t for k, t in zip(pred, y_true)])
    auc = roc_auc_per_class(y_true, proba, classes)
    ap = average_precision_per_class(y_true, proba, classes)
    return {
        "roc_auc_macro": mean_defined(auc),
        "average_precision_macro": mean_defined(ap),
        "log_loss": log_loss(y_true, proba, classes),
        "ece": expected_calibration_error(proba.max(1), correct),
        "roc_auc": dict(zip(classes, auc)),
        "average_precision": dict(zip(classes, ap)),
    }


# --- bootstrap -------------------------------------------------------------------------------


def bootstrap_ci(y_true: list[str], y_pred: list[str], resamples: int = 1000, seed: int = 0,
                 level: float = 0.95, cells: int = 2_000_000) -> dict:
    """Percentile bootstrap intervals for accuracy, balanced accuracy and macro F1.

    Each resample draws ``n`` items with replacement (:func:`_resamples`); its confusion matrix
    comes from one ``bincount`` over (true, predicted) pair codes, for a batch of resamples at
    once (at most ``cells`` drawn items per batch, to bound memory). Each resample is scored as
    the point estimates are (:func:`classification_metrics`): macro F1 over the classes true or
    predicted in the resample, balanced accuracy over the classes true in it.
    """
    n = len(y_true)
    if n == 0 or resamples < 1:
        return {}
    labels = sorted(set(y_true) | set(y_pred))
    index = {c: k for k, c in enumerate(labels)}
    k = len(labels)
    codes = np.array([index[t] * k + index[p] for t, p in zip(y_true, y_pred)], dtype=np.int64)
    acc, bal, f1 = [], [], []
    for drawn in _resamples(n, resamples, seed, cells):
        m = len(drawn)
        drawn = codes[drawn] + (np.arange(m) * k * k)[:, None]
        cm = np.bincount(drawn.ravel(), minlength=m * k * k).reshape(m, k, k)
        tp = np.diagonal(cm, axis1=1, axis2=2).astype(np.float64)
        support, predicted = cm.sum(2), cm.sum(1)
        present, defined = support > 0, support + predicted > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            recall = np.where(present, tp / support, 0.0)
            f1_k = np.where(defined, 2 * tp / (support + predicted), 0.0)
        acc.append(tp.sum(1) / n)
        bal.append(recall.sum(1) / present.sum(1))
        f1.append(f1_k.sum(1) / defined.sum(1))
    out = {"level": level, "resamples": resamples}
    for name, values in (("accuracy", acc), ("balanced_accuracy", bal), ("macro_f1", f1)):
        out[name] = _percentile_interval(np.concatenate(values), level)
    return out


def bootstrap_accuracy(correct, resamples: int = 1000, seed: int = 0, level: float = 0.95,
                       cells: int = 2_000_000) -> list[list[float]]:
    """Percentile bootstrap intervals of the accuracy of each row of ``correct`` (rows x n
    booleans: is item i right), all rows on the same resamples; a row's interval is the
    ``accuracy`` interval :func:`bootstrap_ci` gives for the same items, seed and level."""
    correct = np.atleast_2d(np.asarray(correct, dtype=bool))
    n = correct.shape[1]
    if n == 0 or resamples < 1:
        return [[] for _ in correct]
    right = correct.astype(np.float64)
    acc = []
    for drawn in _resamples(n, resamples, seed, cells):
        m = len(drawn)  # how often each item is drawn, per resample: (m, n) counts
        counts = np.bincount((drawn + (np.arange(m) * n)[:, None]).ravel(), minlength=m * n)
        acc.append(right @ counts.reshape(m, n).T / n)
    acc = np.concatenate(acc, axis=1)
    return [_percentile_interval(row, level) for row in acc]


def _resamples(n: int, resamples: int, seed: int, cells: int):
    """Batches of bootstrap resamples of ``n`` items: (m, n) index arrays, at most ``cells``
    indices per batch; the same ``seed`` and ``n`` give the same resamples."""
    rng = np.random.default_rng(seed)
    batch = max(1, min(resamples, cells // n))
    for start in range(0, resamples, batch):
        yield rng.integers(0, n, size=(min(batch, resamples - start), n))


def _percentile_interval(values: np.ndarray, level: float) -> list[float]:
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return [float(lo), float(hi)]


# --- regression ------------------------------------------------------------------------------


def regression_metrics(y_true, y_pred) -> dict:
    """MAE, RMSE and R² (1 - residual sum of squares / total sum of squares; ``None`` when the
    targets are constant)."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} must be equal 1-d")
    residual = y_true - y_pred
    total = float(((y_true - y_true.mean()) ** 2).sum()) if y_true.size else 0.0
    return {
        "n": int(y_true.size),
        "mae": float(np.abs(residual).mean()) if y_true.size else None,
        "rmse": float(np.sqrt((residual ** 2).mean())) if y_true.size else None,
        "r2": 1.0 - float((residual ** 2).sum()) / total if total > 0 else None,
    }


def bootstrap_regression_ci(y_true, y_pred, resamples: int = 1000, seed: int = 0,
                            level: float = 0.95) -> dict:
    """Percentile bootstrap intervals for MAE and RMSE."""
    y_true = np.asarray(y_true, dtype=np.float64)
    residual = y_true - np.asarray(y_pred, dtype=np.float64)
    n = residual.size
    if n == 0 or resamples < 1:
        return {}
    w = np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=resamples)
    mae = w @ np.abs(residual) / n
    rmse = np.sqrt(w @ residual ** 2 / n)
    tail = (1 - level) / 2 * 100
    return {"level": level, "resamples": resamples,
            "mae": [float(v) for v in np.percentile(mae, [tail, 100 - tail])],
            "rmse": [float(v) for v in np.percentile(rmse, [tail, 100 - tail])]}


def task_tables(metrics: dict) -> list[tuple[str, list[str], list[list]]]:
    """The extra tasks of a multi-task model (``tasks`` in each split of metrics.json) as
    tables for the reports: one (task name, header, rows per split) per task."""
    names = list(dict.fromkeys(t for m in metrics.values() for t in (m.get("tasks") or {})))
    out = []
    for name in names:
        per_split = [(s, m["tasks"][name]) for s, m in metrics.items()
                     if name in (m.get("tasks") or {})]
        if "rmse" in per_split[0][1]:
            header = ["split", "n", "MAE", "RMSE", "R2"]
            rows = [[s, t["n"], t["mae"], t["rmse"], t["r2"]] for s, t in per_split]
        else:
            header = ["split", "n", "accuracy", "balanced accuracy", "macro F1"]
            rows = [[s, t["n"], t["accuracy"], t.get("balanced_accuracy"), t["macro_f1"]]
                    for s, t in per_split]
        out.append((name, header, rows))
    return out
