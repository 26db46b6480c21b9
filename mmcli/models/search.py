"""Hyperparameter search with cross-validation, declared in the config::

    train:
      model: linear_svm
      search: {method: grid, params: {C: [0.1, 1, 10]}, cv: 5}
      # or {method: random, params: {C: [0.01, 0.1, 1, 10]}, n_iter: 3, cv: 3}

Candidates come from scikit-learn's ``ParameterGrid`` / ``ParameterSampler`` (seeded); each is
scored by macro-F1 (:func:`mmcli.report.metrics.macro_f1`, eval's definition) over stratified
``cv``-fold cross-validation of the mmcli model on the train rows. The loop runs over mmcli
models rather than through ``GridSearchCV`` so the same search works for every model (torch
and fusion models too) and every candidate is validated by the model's own parameter checks.
The winner is refitted on all train rows by the train stage.
"""

from __future__ import annotations

import numpy as np

from mmcli.errors import UsageError

KEYS = ("method", "params", "cv", "n_iter", "scoring")


def check_search(search: dict) -> None:
    for key in search:
        if key not in KEYS:
            raise UsageError(f"unknown key {key!r} in train.search",
                             f"known keys: {', '.join(KEYS)}")
    if search.get("method", "grid") not in ("grid", "random"):
        raise UsageError(f"train.search.method is {search.get('method')!r}", "use grid or random")
    grid = search.get("params")
    if not isinstance(grid, dict) or not grid or not all(
            isinstance(v, list) and v for v in grid.values()):
        raise UsageError("train.search.params must map parameter names to non-empty lists",
                         "e.g. search: {params: {C: [0.1, 1, 10]}}")
    if search.get("scoring", "macro_f1") not in ("macro_f1", "accuracy"):
        raise UsageError(f"train.search.scoring is {search.get('scoring')!r}",
                         "use macro_f1 or accuracy")
    for key in ("cv", "n_iter"):
        value = search.get(key, 3)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise UsageError(f"train.search.{key} is {value!r}", "give a positive integer")


def search_params(name: str, base_params: dict, search: dict, X: np.ndarray, y: np.ndarray,
                  n_classes: int, seed: int, blocks=None, device: str = "cpu") -> dict:
    """Return ``{"best_params", "best_score", "results": [{params, score}]}``; ``blocks``
    (:class:`mmcli.blocks.Blocks`) is given to every fit."""
    from sklearn.metrics import accuracy_score
    from sklearn.model_selection import ParameterGrid, ParameterSampler, StratifiedKFold

    from mmcli.models.base import build_model
    from mmcli.report.metrics import macro_f1

    check_search(search)
    grid = search["params"]
    if search.get("method", "grid") == "grid":
        candidates = list(ParameterGrid(grid))
    else:
        candidates = list(ParameterSampler(grid, n_iter=search.get("n_iter", 10),
                                           random_state=seed))
    counts = np.bincount(y, minlength=n_classes)
    folds = min(search.get("cv", 3), int(counts[counts > 0].min()))
    if folds < 2:
        raise UsageError("train.search needs at least 2 train items of every class",
                         "remove train.search or add data")
    skf = StratifiedKFold(folds, shuffle=True, random_state=seed)
    splits = list(skf.split(X, y))
    results = []
    for cand in candidates:
        cand = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in cand.items()}
        scores = []
        for tr, te in splits:
            model = build_model(name, {**base_params, **cand}, seed, device)
            model.fit(X[tr], y[tr], n_classes, blocks=blocks)
            pred = model.predict_proba(X[te]).argmax(1)
            scores.append(accuracy_score(y[te], pred) if search.get("scoring") == "accuracy"
                          else macro_f1(y[te], pred, np.arange(n_classes)))
        results.append({"params": cand, "score": float(np.mean(scores))})
    best = max(results, key=lambda r: r["score"])  # first of equals: deterministic
    return {"best_params": best["params"], "best_score": best["score"], "results": results,
            "cv": folds}
