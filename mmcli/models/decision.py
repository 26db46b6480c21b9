"""Decision-level late fusion: one model per modality block, their probabilities combined.

``late_decision`` fits ``base`` (any classifier name, with ``base_params``) on each modality
block of a concat fuse directory and combines the per-modality probabilities by

* ``average``: their mean;
* ``weights``: a weighted mean, the weights (softmax of free parameters, so positive and
  summing to one) fitted to minimise the log-loss of out-of-fold predictions;
* ``stacking``: a logistic-regression meta-model on the concatenated out-of-fold
  probabilities.

Out-of-fold predictions come from ``cv``-fold stratified cross-validation on the train rows,
so the combiner never learns from probabilities of rows the base model was trained on. When
a class has a single train item there are no out-of-fold predictions for it, and the model
combines by average instead (``combine_`` in its state says which was used).

Missing modalities (``presence``, else read from the fusion's missing indicators, see
:mod:`mmcli.missing`): each base model is fitted on the
rows where its modality is present; an absent modality's out-of-fold probabilities are
uniform; a row that lacks a modality is predicted by the weighted mean of its present
modalities' probabilities only (the weights renormalised over them).
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from mmcli.blocks import Blocks
from mmcli.errors import UsageError
from mmcli.missing import block_presence
from mmcli.models.base import MODELS, Model

COMBINE = ("average", "weights", "stacking")
logger = logging.getLogger(__name__)


@MODELS.register("late_decision")
class LateDecisionModel(Model):
    """One ``base`` model per modality; ``combine``: average, weights or stacking."""

    needs_blocks = True
    #: fit and predict_proba take the presence mask (mmcli.missing)
    uses_presence = True

    @dataclasses.dataclass
    class Params:
        base: str = "logreg"
        base_params: dict = dataclasses.field(default_factory=dict)
        combine: str = "stacking"
        cv: int = 5
        #: C of the stacking meta-model
        meta_C: float = 1.0

    def _check(self) -> None:
        p = self.params
        if p.combine not in COMBINE:
            raise UsageError(f"the 'combine' parameter of model 'late_decision' must be one of "
                             f"{', '.join(COMBINE)}; got {p.combine!r} instead",
                             "fix train.params.combine")
        if p.base == "late_decision" or MODELS.get(p.base, where="late_decision base").needs_blocks:
            raise UsageError(f"late_decision base {p.base!r} needs modality blocks itself",
                             "use a single-input model as base: logreg, linear_svm, mlp, ...")
        if p.cv < 2:
            raise UsageError(f"late_decision cv is {p.cv!r}", "use 2 or more folds")

    def _base(self, seed_offset: int) -> Model:
        return MODELS.get(self.params.base)(seed=self.seed + seed_offset, device=self.device,
                                            **self.params.base_params)

    def fit(self, X, y, n_classes, X_val=None, y_val=None, *, blocks=None, presence=None,
            presence_val=None):
        from sklearn.model_selection import StratifiedKFold

        self._check()
        ranges = self._use_blocks(blocks).ranges
        self.n_classes_ = int(n_classes)
        X = np.asarray(X, dtype=np.float32)
        present = block_presence(X, ranges, presence)
        self.models_ = []
        for b, (a, z) in enumerate(ranges):
            rows = _fit_rows(present[:, b], y)
            val = None if X_val is None else _fit_rows(
                block_presence(X_val, ranges, presence_val)[:, b], y_val)
            m = self._base(b)
            m.fit(X[rows, a:z], y[rows], n_classes,
                  None if X_val is None else np.asarray(X_val)[val, a:z],
                  None if y_val is None else y_val[val])
            self.models_.append(m)
        self.weights_ = np.full(len(ranges), 1.0 / len(ranges))
        self.meta_ = None
        self.combine_ = self.params.combine
        if self.params.combine == "average":
            return self
        counts = np.bincount(y, minlength=n_classes)
        folds = min(self.params.cv, int(counts[counts > 0].min()))
        if folds < 2:
            # a class with one train item leaves no out-of-fold prediction to learn from:
            # average instead of failing (this is the default model)
            logger.warning("late_decision: a class has a single train item; combining the "
                           "modalities by average instead of %s", self.params.combine)
            self.combine_ = "average"
            return self
        oof = np.zeros((len(ranges), len(y), n_classes))
        skf = StratifiedKFold(folds, shuffle=True, random_state=self.seed)
        for tr, te in skf.split(X, y):
            for b, (a, z) in enumerate(ranges):
                rows = tr[_fit_rows(present[tr, b], y[tr])]
                m = self._base(b).fit(X[rows][:, a:z], y[rows], n_classes)
                oof[b, te] = m.predict_proba(X[te][:, a:z])
        oof[~present.T] = 1.0 / n_classes  # an absent modality says nothing
        if self.params.combine == "weights":
            self.weights_ = _fit_weights(oof, y)
        else:
            from mmcli.models.linear import LogisticRegressionModel

            self.meta_ = LogisticRegressionModel(seed=self.seed, C=self.params.meta_C,
                                                 scale="none")
            self.meta_.fit(_stack(oof), y, n_classes)
        return self

    def predict_proba(self, X, presence=None):
        X = np.asarray(X, dtype=np.float32)
        per = np.stack([m.predict_proba(X[:, a:z])
                        for m, (a, z) in zip(self.models_, self.blocks_.ranges)])
        if self.meta_ is not None:
            out = self.meta_.predict_proba(_stack(per))
        else:
            out = np.tensordot(self.weights_, per, axes=1)
        presence = block_presence(X, self.blocks_, presence)
        if not presence.all():
            partial = ~presence.all(axis=1)
            out[partial] = _present_mean(per[:, partial], self.weights_, presence[partial])
        return out

    def get_state(self):
        arrays: dict[str, np.ndarray] = {"weights": self.weights_}
        subs = []
        for k, m in enumerate([*self.models_, *([self.meta_] if self.meta_ else [])]):
            fitted, arr = m.get_state()
            subs.append({"name": m.name, "params": dataclasses.asdict(m.params),
                         "seed": m.seed, "fitted": fitted})
            arrays.update({f"m{k}.{key}": v for key, v in arr.items()})
        return ({"n_classes": self.n_classes_, "blocks": self.blocks_.ranges, "models": subs,
                 "has_meta": self.meta_ is not None, "combine": self.combine_}, arrays)

    def _load(self, fitted, arrays):
        self.n_classes_ = int(fitted["n_classes"])
        self.blocks_ = Blocks.from_ranges(fitted["blocks"])
        self.weights_ = np.asarray(arrays["weights"])
        models = []
        for k, sub in enumerate(fitted["models"]):
            prefix = f"m{k}."
            arr = {key[len(prefix):]: v for key, v in arrays.items() if key.startswith(prefix)}
            models.append(MODELS.get(sub["name"]).from_state(sub, arr))
        self.meta_ = models.pop() if fitted["has_meta"] else None
        self.models_ = models
        self.combine_ = fitted.get("combine", self.params.combine)


def _fit_rows(present: np.ndarray, y: np.ndarray) -> np.ndarray | slice:
    """The rows a modality's base model is fitted on: those where it is present, or all rows
    when that leaves fewer than two classes (a classifier needs two)."""
    if present.all() or len(np.unique(y[present])) < 2:
        return slice(None)
    return np.flatnonzero(present)


def _present_mean(per: np.ndarray, weights: np.ndarray, present: np.ndarray) -> np.ndarray:
    """(n, k) weighted mean of the present modalities' probabilities (per: (m, n, k))."""
    w = weights[None, :] * present
    total = w.sum(1, keepdims=True)
    w = np.where(total > 0, w / np.where(total > 0, total, 1), weights[None, :])
    return np.einsum("nm,mnk->nk", w, per)


def _stack(per: np.ndarray) -> np.ndarray:
    """(n_models, n, k) -> (n, n_models * k) log-probabilities for the meta-model."""
    return np.log(np.clip(per, 1e-6, 1.0)).transpose(1, 0, 2).reshape(per.shape[1], -1)


def _fit_weights(oof: np.ndarray, y: np.ndarray) -> np.ndarray:
    from scipy.optimize import minimize

    rows = np.arange(len(y))

    def loss(theta):
        w = np.exp(theta - theta.max())
        w /= w.sum()
        p = np.tensordot(w, oof[:, rows, y], axes=1)
        return -np.mean(np.log(np.clip(p, 1e-9, 1.0)))

    theta = minimize(loss, np.zeros(oof.shape[0]), method="Nelder-Mead",
                     options={"xatol": 1e-6, "fatol": 1e-9, "maxiter": 2000}).x
    w = np.exp(theta - theta.max())
    return w / w.sum()
