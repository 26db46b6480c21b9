"""Classic scikit-learn models beside logistic regression, saved without pickle.

* ``linear_svm``: ``LinearSVC`` on standardised features, with sigmoid-calibrated
  probabilities (the coefficients and the calibration's parameters are what is saved).
* ``random_forest``: ``RandomForestClassifier``.
* ``hist_gb``: ``HistGradientBoostingClassifier``.

Trees are saved as their node arrays (children, feature, threshold, leaf values) and predicted
here with a small vectorised traversal, so a model directory holds JSON and ``.npz`` only and is
byte-identical for the same seed (``skops`` was considered, but its archives name their members
by object id, so two saves of one model differ). Each model takes ``class_weight``.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from mmcli.errors import UsageError
from mmcli.models.base import MODELS, Model


def _check_class_weight(model: Model) -> None:
    if model.params.class_weight not in (None, "balanced"):
        raise UsageError(f"the 'class_weight' parameter of model {model.name!r} must be null "
                         f"or balanced; got {model.params.class_weight!r} instead",
                         "fix train.params.class_weight")


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class SklearnModel(Model):
    """Common fit / predict for the wrappers: ``_estimator()`` builds the sklearn object."""

    def _estimator(self):
        raise NotImplementedError

    def fit(self, X, y, n_classes, X_val=None, y_val=None, *, blocks=None):
        from sklearn.exceptions import ConvergenceWarning

        _check_class_weight(self)
        self.n_classes_ = int(n_classes)
        self.n_features_ = int(X.shape[1])
        est = self._estimator()
        X = np.asarray(X, dtype=np.float32)
        self._fit_rows = (X, y)  # for models that calibrate after fitting (linear_svm)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X, y)
        self.classes_ = np.asarray(est.classes_, dtype=np.int64)
        self._keep(est)
        del self._fit_rows
        return self

    def predict_proba(self, X):
        proba = self._proba(np.asarray(X, dtype=np.float32))
        out = np.zeros((proba.shape[0], self.n_classes_), dtype=np.float64)
        out[:, self.classes_] = proba
        return out

    def get_state(self):
        fitted, arrays = self._arrays()
        return ({"n_classes": self.n_classes_, "n_features": self.n_features_, **fitted},
                {"classes": self.classes_, **arrays})

    def _load(self, fitted, arrays):
        self.n_classes_, self.n_features_ = int(fitted["n_classes"]), int(fitted["n_features"])
        self.classes_ = np.asarray(arrays["classes"], dtype=np.int64)
        self._restore(fitted, arrays)


@MODELS.register("linear_svm")
class LinearSVMModel(SklearnModel):
    """Linear support vector machine (``C``, ``class_weight``, ``max_iter``, ``scale`` as for
    logreg) with calibrated probabilities.

    ``calibration: sigmoid`` (the default) is scikit-learn's ``CalibratedClassifierCV(...,
    method="sigmoid", ensemble=False)``: one SVM on all rows, and per class a sigmoid of its
    decision value fitted on out-of-fold decision values (``calibration_cv`` folds, fewer when
    a class has fewer rows), normalised over the classes; so log-loss and calibration error
    mean what they say. ``calibration: none`` gives the softmax of the decision values (not
    probabilities in any calibrated sense: log-loss and calibration error mean little).
    """

    @dataclasses.dataclass
    class Params:
        C: float = 1.0
        class_weight: str | None = None
        max_iter: int = 5000
        scale: str = "standard"
        calibration: str = "sigmoid"
        calibration_cv: int = 3

    def _estimator(self):
        from sklearn.svm import LinearSVC

        p = self.params
        if p.calibration not in ("sigmoid", "none"):
            raise UsageError(f"the 'calibration' parameter of model 'linear_svm' must be "
                             f"sigmoid or none; got {p.calibration!r} instead",
                             "fix train.params.calibration")
        return LinearSVC(C=p.C, class_weight=p.class_weight, max_iter=p.max_iter,
                         random_state=self.seed)

    def fit(self, X, y, n_classes, X_val=None, y_val=None, *, blocks=None):
        from mmcli.models.linear import fit_scaler, scaled

        fit_scaler(self, X)
        return super().fit(scaled(self, X).astype(np.float32), y, n_classes)

    def predict_proba(self, X):
        from mmcli.models.linear import scaled

        return super().predict_proba(scaled(self, X))

    def _keep(self, est):
        self.coef_, self.intercept_ = est.coef_.astype(np.float64), est.intercept_.astype(
            np.float64)
        self.calib_ = None
        if self.params.calibration == "sigmoid":
            self.calib_ = self._calibrate(est)

    def _calibrate(self, est):
        """(2, n_columns) sigmoid parameters (a, b) per decision column, from a refit of
        scikit-learn's CalibratedClassifierCV on the same rows, or None when a class has a
        single row (no out-of-fold values)."""
        import warnings

        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.exceptions import ConvergenceWarning

        X, y = self._fit_rows
        counts = np.bincount(y)
        folds = min(self.params.calibration_cv, int(counts[counts > 0].min()))
        if folds < 2:
            return None
        from sklearn.model_selection import StratifiedKFold

        cal = CalibratedClassifierCV(self._estimator(), method="sigmoid", ensemble=False,
                                     cv=StratifiedKFold(folds, shuffle=True,
                                                        random_state=self.seed))
        weight = None
        if self.params.class_weight == "balanced":
            # calibrating to the train priors would undo the class weights: calibrate as if
            # the classes were balanced too
            from sklearn.utils.class_weight import compute_sample_weight

            weight = compute_sample_weight("balanced", y)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            cal.fit(X, y, sample_weight=weight)
        calibrators = cal.calibrated_classifiers_[0].calibrators
        return np.array([[c.a_, c.b_] for c in calibrators], dtype=np.float64).T

    def _proba(self, X):
        d = X.astype(np.float64) @ self.coef_.T + self.intercept_
        if self.calib_ is not None:
            from scipy.special import expit

            p = expit(-(self.calib_[0] * d + self.calib_[1]))
            if len(self.classes_) == 2:
                return np.hstack([1 - p, p])
            total = p.sum(axis=1, keepdims=True)
            uniform = np.full_like(p, 1.0 / p.shape[1])
            return np.where(total > 0, p / np.where(total > 0, total, 1.0), uniform)
        if len(self.classes_) == 2:
            d = np.hstack([-d / 2, d / 2])
        return _softmax(d)

    def _arrays(self):
        from mmcli.models.linear import scaler_arrays

        arrays = {"coef": self.coef_, "intercept": self.intercept_, **scaler_arrays(self)}
        if self.calib_ is not None:
            arrays["calibration"] = self.calib_
        return {}, arrays

    def _restore(self, fitted, arrays):
        from mmcli.models.linear import load_scaler

        self.coef_, self.intercept_ = arrays["coef"], arrays["intercept"]
        self.calib_ = np.asarray(arrays["calibration"]) if "calibration" in arrays else None
        load_scaler(self, arrays)


class Forest:
    """Trees as flat node arrays: ``left``/``right`` (-1 at leaves), ``feature``,
    ``threshold``, ``nan_left`` (missing values go left) and ``value`` per node."""

    def __init__(self, left, right, feature, threshold, nan_left, value, roots):
        self.left, self.right, self.feature = left, right, feature
        self.threshold, self.nan_left, self.value, self.roots = threshold, nan_left, value, roots

    def leaves(self, X: np.ndarray) -> np.ndarray:
        """(n, n_trees) leaf node index of every row in every tree."""
        node = np.broadcast_to(self.roots, (X.shape[0], len(self.roots))).copy()
        rows = np.arange(X.shape[0])[:, None]
        while True:
            inner = self.left[node] >= 0
            if not inner.any():
                return node
            x = X[rows, self.feature[node]].astype(np.float64)
            go_left = np.where(np.isnan(x), self.nan_left[node], x <= self.threshold[node])
            node = np.where(inner, np.where(go_left, self.left[node], self.right[node]), node)

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: getattr(self, k) for k in ("left", "right", "feature", "threshold",
                                              "nan_left", "value", "roots")}


def _flatten(trees: list[dict]) -> Forest:
    parts: dict[str, list] = {k: [] for k in ("left", "right", "feature", "threshold",
                                              "nan_left", "value")}
    roots, offset = [], 0
    for t in trees:
        n = len(t["left"])
        roots.append(offset)
        for key in ("left", "right"):
            child = np.asarray(t[key], dtype=np.int64)
            parts[key].append(np.where(child >= 0, child + offset, -1))
        parts["feature"].append(np.asarray(t["feature"], dtype=np.int64).clip(min=0))
        parts["threshold"].append(np.asarray(t["threshold"], dtype=np.float64))
        parts["nan_left"].append(np.asarray(t["nan_left"], dtype=bool))
        parts["value"].append(np.asarray(t["value"], dtype=np.float64))
        offset += n
    return Forest(*(np.concatenate(parts[k]) for k in ("left", "right", "feature", "threshold",
                                                      "nan_left", "value")),
                  np.asarray(roots, dtype=np.int64))


def _forest_from(arrays) -> Forest:
    return Forest(*(np.asarray(arrays[k]) for k in ("left", "right", "feature", "threshold",
                                                    "nan_left", "value", "roots")))


@MODELS.register("random_forest")
class RandomForestModel(SklearnModel):
    """Random forest (``n_estimators``, ``max_depth``, ``min_samples_leaf``,
    ``max_features``, ``class_weight``)."""

    @dataclasses.dataclass
    class Params:
        n_estimators: int = 200
        max_depth: int | None = None
        min_samples_leaf: int = 1
        max_features: str = "sqrt"
        class_weight: str | None = None

    def _estimator(self):
        from sklearn.ensemble import RandomForestClassifier

        p = self.params
        return RandomForestClassifier(
            n_estimators=p.n_estimators, max_depth=p.max_depth,
            min_samples_leaf=p.min_samples_leaf, max_features=p.max_features,
            class_weight=p.class_weight, random_state=self.seed, n_jobs=1)

    def _keep(self, est):
        trees = []
        for tree in (e.tree_ for e in est.estimators_):
            value = tree.value[:, 0, :]
            value = value / np.maximum(value.sum(axis=1, keepdims=True), 1e-300)
            nan_left = getattr(tree, "missing_go_to_left", np.zeros(tree.node_count, bool))
            trees.append({"left": tree.children_left, "right": tree.children_right,
                          "feature": tree.feature, "threshold": tree.threshold,
                          "nan_left": nan_left, "value": value})
        self.forest_ = _flatten(trees)

    def _proba(self, X):
        leaves = self.forest_.leaves(X)
        return self.forest_.value[leaves].mean(axis=1)

    def _arrays(self):
        return {}, self.forest_.arrays()

    def _restore(self, fitted, arrays):
        self.forest_ = _forest_from(arrays)


@MODELS.register("hist_gb")
class HistGradientBoostingModel(SklearnModel):
    """Histogram gradient boosting (``learning_rate``, ``max_iter``, ``max_leaf_nodes``,
    ``l2_regularization``, ``early_stopping`` on an internal split, ``class_weight``)."""

    @dataclasses.dataclass
    class Params:
        learning_rate: float = 0.1
        max_iter: int = 200
        max_leaf_nodes: int = 31
        l2_regularization: float = 0.0
        early_stopping: bool = False
        class_weight: str | None = None

    def _estimator(self):
        from sklearn.ensemble import HistGradientBoostingClassifier

        p = self.params
        return HistGradientBoostingClassifier(
            learning_rate=p.learning_rate, max_iter=p.max_iter, max_leaf_nodes=p.max_leaf_nodes,
            l2_regularization=p.l2_regularization,
            early_stopping=p.early_stopping,
            class_weight=p.class_weight, random_state=self.seed)

    def _keep(self, est):
        trees = []
        for per_iter in est._predictors:
            for pred in per_iter:
                nodes = pred.nodes
                leaf = nodes["is_leaf"].astype(bool)
                trees.append({"left": np.where(leaf, -1, nodes["left"].astype(np.int64)),
                              "right": np.where(leaf, -1, nodes["right"].astype(np.int64)),
                              "feature": nodes["feature_idx"],
                              "threshold": nodes["num_threshold"],
                              "nan_left": nodes["missing_go_to_left"],
                              "value": nodes["value"]})
        self.per_iter_ = len(est._predictors[0])
        self.baseline_ = np.asarray(est._baseline_prediction, dtype=np.float64).reshape(-1)
        self.forest_ = _flatten(trees)

    def _proba(self, X):
        raw = self.forest_.value[self.forest_.leaves(X)]  # n, n_iter * per_iter
        raw = raw.reshape(X.shape[0], -1, self.per_iter_).sum(axis=1) + self.baseline_
        if self.per_iter_ == 1:
            p1 = 1.0 / (1.0 + np.exp(-raw[:, 0]))
            return np.stack([1 - p1, p1], axis=1)
        return _softmax(raw)

    def _arrays(self):
        return {"per_iter": self.per_iter_}, {"baseline": self.baseline_,
                                              **self.forest_.arrays()}

    def _restore(self, fitted, arrays):
        self.per_iter_ = int(fitted["per_iter"])
        self.baseline_ = np.asarray(arrays["baseline"])
        self.forest_ = _forest_from(arrays)
