"""Models: learning a toy problem, probabilities, determinism, state, early stopping."""

from __future__ import annotations

import numpy as np
import pytest

from mmcli.errors import UsageError
from mmcli.models import MODELS, build_model, load_model, save_model

FAST = {
    "logreg": {},
    "mlp": {"hidden": [16], "epochs": 30, "batch_size": 16, "lr": 0.01, "patience": 5},
}


def toy(n: int = 90, k: int = 3, d: int = 5, seed: int = 0):
    """Three well separated Gaussian blobs."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, (k, d))
    y = np.arange(n) % k
    X = centres[y] + rng.normal(0, 0.5, (n, d))
    return X.astype(np.float32), y.astype(np.int64)


def fit(name: str, seed: int = 0, **params):
    X, y = toy()
    model = build_model(name, {**FAST[name], **params}, seed, "cpu")
    return model.fit(X, y, 3, X[:30], y[:30]), X, y


def test_registered():
    assert MODELS.names() == ["attention", "gmu", "hist_gb", "late_decision", "late_repr",
                              "linear_svm", "logreg", "lowrank", "mlp", "random_forest",
                              "subset", "tensor_layer"]


@pytest.mark.parametrize("name", ["logreg", "mlp"])
def test_learns_separable_problem(name):
    model, X, y = fit(name)
    proba = model.predict_proba(X)
    assert proba.shape == (90, 3)
    assert (proba.argmax(1) == y).mean() > 0.9


@pytest.mark.parametrize("name", ["logreg", "mlp"])
def test_probabilities_sum_to_one(name):
    model, X, _ = fit(name)
    proba = model.predict_proba(X + np.float32(3.0))
    assert np.all(proba >= 0)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("name", ["logreg", "mlp"])
def test_same_seed_same_probabilities(name):
    a, X, _ = fit(name, seed=4)
    b, _, _ = fit(name, seed=4)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def test_mlp_seed_matters():
    a, X, _ = fit("mlp", seed=1)
    b, _, _ = fit("mlp", seed=2)
    assert not np.array_equal(a.predict_proba(X), b.predict_proba(X))


@pytest.mark.parametrize("name", ["logreg", "mlp"])
def test_state_round_trip(name, tmp_path):
    model, X, _ = fit(name, seed=3)
    save_model(model, tmp_path / "model", ["a", "b", "c"])
    assert not list((tmp_path / "model").glob("*.pkl"))
    restored, classes = load_model(tmp_path / "model")
    assert classes == ["a", "b", "c"]
    assert type(restored) is type(model) and restored.seed == 3
    other = np.random.default_rng(9).normal(0, 3, (7, X.shape[1])).astype(np.float32)
    np.testing.assert_array_equal(restored.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(restored.predict_proba(other), model.predict_proba(other))


def test_logreg_class_missing_from_train():
    X, y = toy()
    keep = y != 1
    model = build_model("logreg", {}, 0, "cpu").fit(X[keep], np.where(y[keep] == 2, 2, 0), 3)
    proba = model.predict_proba(X)
    assert proba.shape == (90, 3)
    np.testing.assert_array_equal(proba[:, 1], 0)


def test_logreg_binary_round_trip(tmp_path):
    X, y = toy(k=2)
    model = build_model("logreg", {"C": 0.5}, 0, "cpu").fit(X, y, 2)
    save_model(model, tmp_path, ["no", "yes"])
    restored, _ = load_model(tmp_path)
    np.testing.assert_array_equal(restored.predict_proba(X), model.predict_proba(X))
    assert (model.predict_proba(X).argmax(1) == y).mean() > 0.9


def test_logreg_l1():
    X, y = toy()
    model = build_model("logreg", {"penalty": "l1", "C": 1.0}, 0, "cpu").fit(X, y, 3)
    assert (model.predict_proba(X).argmax(1) == y).mean() > 0.9


@pytest.mark.parametrize("name", ["logreg", "mlp"])
def test_class_weight_balanced(name):
    X, y = toy(120)
    keep = (y != 0) | (np.arange(120) < 12)  # class 0 is rare
    model = build_model(name, {**FAST[name], "class_weight": "balanced"}, 0, "cpu")
    model.fit(X[keep], y[keep], 3, X[:30], y[:30])
    assert (model.predict_proba(X).argmax(1) == y).mean() > 0.9


def test_mlp_log_and_no_validation():
    X, y = toy()
    model = build_model("mlp", {**FAST["mlp"], "epochs": 7}, 0, "cpu").fit(X, y, 3)
    assert [r["epoch"] for r in model.log_] == list(range(1, 8))
    assert all("val_loss" not in r for r in model.log_)
    assert model.best_epoch_ == 7


def test_mlp_early_stopping_restores_best_epoch():
    X, y = toy()
    # validation labels are the train labels shifted: the better the model learns the train
    # data, the worse the validation loss gets, so it stops early.
    Xv, yv = X[:30], (y[:30] + 1) % 3
    params = {"hidden": [16], "epochs": 200, "batch_size": 16, "lr": 0.01, "patience": 4,
              "dropout": 0.0}
    model = build_model("mlp", params, 0, "cpu").fit(X, y, 3, Xv, yv)
    epochs_run = len(model.log_)
    assert epochs_run < 200
    assert model.best_epoch_ < epochs_run
    assert epochs_run == model.best_epoch_ + 4  # stopped after `patience` epochs without gain
    val_losses = [r["val_loss"] for r in model.log_]
    assert model.log_[model.best_epoch_ - 1]["val_loss"] == min(val_losses)
    # the restored weights are the best epoch's: their validation loss is the logged minimum
    proba = model.predict_proba(Xv)
    loss = -np.mean(np.log(proba[np.arange(len(yv)), yv]))
    assert loss == pytest.approx(min(val_losses), rel=1e-4)
    assert loss < val_losses[-1]


def test_unknown_param():
    with pytest.raises(UsageError) as exc:
        build_model("mlp", {"hiden": [8]}, 0, "cpu")
    assert "hiden" in exc.value.message and "hidden" in exc.value.hint
    with pytest.raises(UsageError):
        build_model("logreg", {"epochs": 3}, 0, "cpu")


def test_unknown_model():
    with pytest.raises(UsageError) as exc:
        build_model("mpl", {}, 0, "cpu")
    assert exc.value.hint == "did you mean 'mlp'?"


def test_unknown_device():
    with pytest.raises(UsageError, match="tpu"):
        build_model("logreg", {}, 0, "tpu")


def test_mlp_saved_before_the_shared_loop_still_loads(tmp_path):
    """An mlp directory as written before the shared training loop (no tasks, no blocks)."""
    from mmcli import artifacts

    rng = np.random.default_rng(0)
    arrays = {"0.weight": rng.normal(0, 1, (4, 5)).astype(np.float32),
              "0.bias": np.zeros(4, np.float32),
              "3.weight": rng.normal(0, 1, (3, 4)).astype(np.float32),
              "3.bias": np.zeros(3, np.float32)}
    params = {"hidden": [4], "dropout": 0.3, "lr": 1e-3, "weight_decay": 1e-3, "l1": 0.0,
              "epochs": 5, "batch_size": 8, "patience": 2, "class_weight": None}
    state = {"name": "mlp", "params": params, "seed": 0, "classes": ["a", "b", "c"],
             "fitted": {"n_features": 5, "n_classes": 3, "best_epoch": 5, "epochs_run": 5}}
    artifacts.save_state(tmp_path, "model", state, arrays)
    model, classes = load_model(tmp_path)
    X = rng.normal(0, 1, (6, 5)).astype(np.float32)
    h = np.maximum(X @ arrays["0.weight"].T, 0) @ arrays["3.weight"].T
    expected = np.exp(h) / np.exp(h).sum(1, keepdims=True)
    np.testing.assert_allclose(model.predict_proba(X), expected, rtol=1e-5)
