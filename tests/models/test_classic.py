"""Classic models: learning, probabilities equal scikit-learn's, state without pickle."""

from __future__ import annotations

import numpy as np
import pytest

from mmcli.errors import UsageError
from mmcli.models import build_model, load_model, save_model

from .toy import blobs

CLASSIC = {"linear_svm": {}, "random_forest": {"n_estimators": 15},
           "hist_gb": {"max_iter": 15}}


@pytest.mark.parametrize("name", CLASSIC)
@pytest.mark.parametrize("k", [2, 3])
def test_learns_and_round_trips(name, k, tmp_path):
    X, y = blobs(k=k)
    model = build_model(name, CLASSIC[name], 0, "cpu").fit(X, y, k)
    proba = model.predict_proba(X)
    assert proba.shape == (90, k)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-9)
    assert (proba.argmax(1) == y).mean() > 0.9
    save_model(model, tmp_path, [str(c) for c in range(k)])
    assert {p.suffix for p in tmp_path.iterdir()} == {".json", ".npz"}
    restored, _ = load_model(tmp_path)
    other = np.random.default_rng(1).normal(0, 4, (50, 5)).astype(np.float32)
    np.testing.assert_array_equal(restored.predict_proba(other), model.predict_proba(other))


@pytest.mark.parametrize("name", ["random_forest", "hist_gb"])
def test_tree_traversal_matches_sklearn(name):
    X, y = blobs(120, d=4, seed=2)
    X += np.random.default_rng(0).normal(0, 3, X.shape).astype(np.float32)  # deep trees
    model = build_model(name, CLASSIC[name], 0, "cpu").fit(X, y, 3)
    est = model._estimator().fit(X, y)
    other = np.random.default_rng(5).normal(0, 5, (200, 4)).astype(np.float32)
    other[::17, 1] = np.nan
    np.testing.assert_allclose(model.predict_proba(other), est.predict_proba(other), atol=1e-9)


@pytest.mark.parametrize("name", CLASSIC)
def test_byte_identical_state(name, tmp_path):
    X, y = blobs()
    for d in ("a", "b"):
        save_model(build_model(name, CLASSIC[name], 4, "cpu").fit(X, y, 3), tmp_path / d, ["x"])
    for f in ("model.json", "model.npz"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()


@pytest.mark.parametrize("name", CLASSIC)
def test_class_weight_balanced_helps_rare_class(name):
    X, y = blobs(300, d=2, seed=3)
    X = X + np.random.default_rng(0).normal(0, 4.0, X.shape).astype(np.float32)
    keep = (y != 0) | (np.arange(300) < 15)
    rare = y == 0

    def recall(params):
        m = build_model(name, {**CLASSIC[name], **params}, 0, "cpu").fit(X[keep], y[keep], 3)
        return (m.predict_proba(X[rare]).argmax(1) == 0).mean()

    assert recall({"class_weight": "balanced"}) > recall({})


def test_missing_class_gets_zero_probability():
    X, y = blobs()
    keep = y != 1
    model = build_model("random_forest", {"n_estimators": 5}, 0, "cpu").fit(X[keep], y[keep], 3)
    assert model.predict_proba(X).shape == (90, 3)
    np.testing.assert_array_equal(model.predict_proba(X)[:, 1], 0)


def test_bad_class_weight():
    X, y = blobs()
    with pytest.raises(UsageError, match="class_weight"):
        build_model("linear_svm", {"class_weight": "auto"}, 0, "cpu").fit(X, y, 3)
