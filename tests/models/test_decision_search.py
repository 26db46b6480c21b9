"""Decision-level late fusion and cross-validated hyperparameter search."""

from __future__ import annotations

import numpy as np
import pytest

from mmcli.errors import UsageError
from mmcli.models import build_model, load_model, save_model
from mmcli.models.search import search_params

from .toy import blobs, three_blocks


@pytest.mark.parametrize("combine", ["average", "weights", "stacking"])
def test_late_decision(combine, tmp_path):
    X, y, blocks = three_blocks(150)
    model = build_model("late_decision", {"combine": combine, "cv": 3}, 0, "cpu")
    model.fit(X[60:], y[60:], 3, blocks=blocks)
    X, y = X[:60], y[:60]  # scored on rows it never saw
    proba = model.predict_proba(X)
    assert proba.shape == (60, 3)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-6)
    assert (proba.argmax(1) == y).mean() > 0.8
    assert model.weights_.sum() == pytest.approx(1.0)
    save_model(model, tmp_path, ["a", "b", "c"])
    restored, _ = load_model(tmp_path)
    np.testing.assert_array_equal(restored.predict_proba(X), proba)


def test_learned_weights_favour_the_informative_modality():
    X, y, _ = three_blocks()
    X = np.hstack([X[:, :6], np.random.default_rng(0).normal(0, 1, (90, 4)).astype(np.float32)])
    model = build_model("late_decision", {"combine": "weights", "cv": 3}, 0, "cpu")
    model.fit(X, y, 3, blocks=[(0, 6), (6, 10)])  # the second block is pure noise
    assert model.weights_[0] > 0.7


def test_late_decision_with_a_torch_base():
    X, y, blocks = three_blocks()
    model = build_model("late_decision", {"base": "mlp", "combine": "average",
                                          "base_params": {"hidden": [8], "epochs": 20,
                                                          "lr": 0.01}}, 0, "cpu")
    assert (model.fit(X, y, 3, blocks=blocks).predict_proba(X).argmax(1) == y).mean() > 0.8


def test_late_decision_bad_params():
    X, y, blocks = three_blocks()
    for params, match in (({"combine": "vote"}, "combine"), ({"base": "gmu"}, "gmu"),
                          ({"cv": 1}, "cv")):
        model = build_model("late_decision", params, 0, "cpu")
        with pytest.raises(UsageError, match=match):
            model.fit(X, y, 3, blocks=blocks)


def test_grid_search_picks_the_better_value():
    X, y = blobs(90, seed=1)
    X = X + np.random.default_rng(0).normal(0, 3, X.shape).astype(np.float32)
    # unscaled, as the test was written: standardised, C=1e-5 already points the right way
    result = search_params("logreg", {"scale": "none"},
                           {"method": "grid", "params": {"C": [1e-5, 1.0]}, "cv": 3},
                           X, y, 3, 0)
    assert result["best_params"] == {"C": 1.0}
    assert [r["params"]["C"] for r in result["results"]] == [1e-5, 1.0]
    assert result["cv"] == 3


def test_random_search_is_seeded():
    X, y = blobs()
    spec = {"method": "random", "params": {"C": [0.01, 0.1, 1, 10], "max_iter": [100, 200]},
            "n_iter": 3, "cv": 2}
    a = search_params("linear_svm", {}, spec, X, y, 3, 5)
    b = search_params("linear_svm", {}, spec, X, y, 3, 5)
    assert a == b and len(a["results"]) == 3


@pytest.mark.parametrize("spec,match", [
    ({"method": "bayes", "params": {"C": [1]}}, "method"),
    ({"params": {"C": 1}}, "non-empty lists"),
    ({"params": {"C": [1]}, "folds": 3}, "folds"),
    ({"params": {"C": [1]}, "cv": 0}, "cv"),
    ({"params": {"c": [1]}}, "unknown parameter 'c'"),
])
def test_bad_search(spec, match):
    X, y = blobs()
    with pytest.raises(UsageError, match=match):
        search_params("logreg", {}, spec, X, y, 3, 0)


def test_late_decision_falls_back_to_average_with_a_singleton_class():
    X, y, blocks = three_blocks()
    keep = (y != 2) | (np.arange(90) == 2)  # class 2: one train item
    model = build_model("late_decision", {}, 0, "cpu")
    model.fit(X[keep], y[keep], 3, blocks=blocks)
    assert model.combine_ == "average" and model.meta_ is None
    assert model.predict_proba(X).shape == (90, 3)
