"""Logistic regression (scikit-learn), and the per-feature standardisation that the linear
models share.

Linear models see per-feature standardised inputs (``scale: standard``, the default; mean and
scale fitted on the rows given to ``fit``), as ``make_pipeline(StandardScaler(), model)``
would: the concat fusion divides each block by its total standard deviation (so blocks weigh
the same), which leaves every feature of a d-dimensional block a variance of about 1/d, and a
fixed ``C`` would then regularise a large block about d times harder than a small one.
``scale: none`` uses the fused values as they are.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mmcli.errors import UsageError
from mmcli.models.base import MODELS, Model

SCALES = ("standard", "none")


def fit_scaler(model: Model, X: np.ndarray) -> None:
    """Fit the per-feature standardisation of ``model.params.scale`` on ``X``."""
    if model.params.scale not in SCALES:
        raise UsageError(f"the 'scale' parameter of model {model.name!r} must be one of "
                         f"{', '.join(SCALES)}; got {model.params.scale!r} instead",
                         "fix train.params.scale")
    if model.params.scale == "none":
        model.scale_ = None
        return
    x = np.asarray(X, dtype=np.float64)
    std = x.std(axis=0)
    std[std < 1e-8] = 1.0
    model.scale_ = (x.mean(axis=0), std)


def scaled(model: Model, X: np.ndarray) -> np.ndarray:
    """``X`` standardised with the fitted scaler (as float64), or as it is."""
    if getattr(model, "scale_", None) is None:
        return np.asarray(X)
    mean, std = model.scale_
    return (np.asarray(X, dtype=np.float64) - mean) / std


def scaler_arrays(model: Model) -> dict[str, np.ndarray]:
    if getattr(model, "scale_", None) is None:
        return {}
    return {"scale_mean": model.scale_[0], "scale_std": model.scale_[1]}


def load_scaler(model: Model, arrays) -> None:
    """Models saved before the scaler existed have none (they were fitted unscaled)."""
    model.scale_ = ((np.asarray(arrays["scale_mean"]), np.asarray(arrays["scale_std"]))
                    if "scale_mean" in arrays else None)


@MODELS.register("logreg")
class LogisticRegressionModel(Model):
    """Multinomial logistic regression with an L2 (or L1) penalty.

    Parameters: ``C`` (inverse regularisation strength), ``penalty`` (l2 or l1),
    ``class_weight`` (null or balanced), ``max_iter``, ``scale`` (standard: per-feature
    standardisation fitted on train first; none).
    """

    @dataclasses.dataclass
    class Params:
        C: float = 1.0
        penalty: str = "l2"
        class_weight: str | None = None
        max_iter: int = 2000
        scale: str = "standard"

    def _estimator(self):
        from sklearn.linear_model import LogisticRegression

        p = self.params
        if p.penalty not in ("l1", "l2") or p.class_weight not in (None, "balanced"):
            raise UsageError(f"logreg penalty is {p.penalty!r} and class_weight is "
                             f"{p.class_weight!r}", "use penalty l2 or l1, class_weight null "
                             "or balanced")
        solver = "saga" if p.penalty == "l1" else "lbfgs"
        return LogisticRegression(C=p.C, l1_ratio=1.0 if p.penalty == "l1" else 0.0,
                                  solver=solver, class_weight=p.class_weight,
                                  max_iter=p.max_iter, random_state=self.seed)

    def fit(self, X, y, n_classes, X_val=None, y_val=None, *, blocks=None):
        import warnings

        from sklearn.exceptions import ConvergenceWarning

        self.n_classes_ = n_classes
        self.est_ = self._estimator()
        fit_scaler(self, X)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.est_.fit(scaled(self, X), y)
        return self

    def predict_proba(self, X):
        proba = self.est_.predict_proba(scaled(self, X))
        out = np.zeros((X.shape[0], self.n_classes_), dtype=np.float64)
        out[:, self.est_.classes_] = proba
        return out

    def get_state(self):
        return ({"n_classes": self.n_classes_, "n_features": int(self.est_.n_features_in_)},
                {"coef": self.est_.coef_, "intercept": self.est_.intercept_,
                 "classes": self.est_.classes_, **scaler_arrays(self)})

    def _load(self, fitted, arrays):
        self.n_classes_ = int(fitted["n_classes"])
        est = self._estimator()
        est.coef_, est.intercept_ = arrays["coef"], arrays["intercept"]
        est.classes_ = arrays["classes"]
        est.n_features_in_ = int(fitted["n_features"])
        self.est_ = est
        load_scaler(self, arrays)
