"""Logistic regression (scikit-learn)."""

from __future__ import annotations

import dataclasses

import numpy as np

from mmcli.errors import UsageError
from mmcli.models.base import MODELS, Model


@MODELS.register("logreg")
class LogisticRegressionModel(Model):
    """Multinomial logistic regression with an L2 (or L1) penalty.

    Parameters: ``C`` (inverse regularisation strength), ``penalty`` (l2 or l1),
    ``class_weight`` (null or balanced), ``max_iter``.
    """

    @dataclasses.dataclass
    class Params:
        C: float = 1.0
        penalty: str = "l2"
        class_weight: str | None = None
        max_iter: int = 2000

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

    def fit(self, X, y, n_classes, X_val=None, y_val=None):
        import warnings

        from sklearn.exceptions import ConvergenceWarning

        self.n_classes_ = n_classes
        self.est_ = self._estimator()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.est_.fit(X, y)
        return self

    def predict_proba(self, X):
        proba = self.est_.predict_proba(X)
        out = np.zeros((X.shape[0], self.n_classes_), dtype=np.float64)
        out[:, self.est_.classes_] = proba
        return out

    def get_state(self):
        return ({"n_classes": self.n_classes_, "n_features": int(self.est_.n_features_in_)},
                {"coef": self.est_.coef_, "intercept": self.est_.intercept_,
                 "classes": self.est_.classes_})

    def _load(self, fitted, arrays):
        self.n_classes_ = int(fitted["n_classes"])
        est = self._estimator()
        est.coef_, est.intercept_ = arrays["coef"], arrays["intercept"]
        est.classes_ = arrays["classes"]
        est.n_features_in_ = int(fitted["n_features"])
        self.est_ = est
