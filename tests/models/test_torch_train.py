"""The shared torch training loop: controls, determinism, imbalance, tasks, modality dropout."""

from __future__ import annotations

import numpy as np
import pytest

from mmcli.errors import UsageError
from mmcli.models import build_model, load_model, save_model

from .toy import blobs, split, two_modalities

SMALL = {"hidden": [16], "epochs": 25, "batch_size": 16, "lr": 0.01, "patience": 5}


def acc(model, X, y) -> float:
    return float((model.predict_proba(X).argmax(1) == y).mean())


@pytest.mark.parametrize("controls", [
    {"loss": "focal", "focal_gamma": 2.0},
    {"optimizer": "sgd", "lr": 0.05, "schedule": "step", "lr_step": 5, "lr_gamma": 0.5},
    {"optimizer": "adam", "schedule": "cosine", "init": "xavier"},
    {"init": "kaiming", "clip_grad": 1.0, "l1": 1e-4, "noise": 0.1, "dropout": 0.0},
])
def test_training_controls_learn(controls):
    (X, y), (Xv, yv), (Xs, ys) = split(*blobs(150), 30, 30)
    model = build_model("mlp", {**SMALL, **controls}, 0, "cpu").fit(X, y, 3, Xv, yv)
    assert model.predict_proba(Xs).shape == (30, 3)
    assert acc(model, Xs, ys) > 0.9  # on rows it never saw
    assert all(np.isfinite(r["train_loss"]) for r in model.log_)


def test_schedule_changes_learning_rate():
    X, y = blobs()
    params = {**SMALL, "epochs": 6, "schedule": "step", "lr_step": 2, "lr_gamma": 0.5}
    model = build_model("mlp", params, 0, "cpu").fit(X, y, 3)
    assert [r["lr"] for r in model.log_] == pytest.approx(
        [0.01, 0.01, 0.005, 0.005, 0.0025, 0.0025])


@pytest.mark.parametrize("key,value", [("loss", "hinge"), ("optimizer", "lbfgs"),
                                       ("schedule", "cyclic"), ("init", "zeros"),
                                       ("sampling", "smote"), ("modality_dropout", 1.0),
                                       ("epochs", 0)])
def test_bad_control_is_a_usage_error(key, value):
    with pytest.raises(UsageError, match=key):
        build_model("mlp", {key: value}, 0, "cpu")


def test_same_seed_byte_identical_state(tmp_path):
    X, y = blobs()
    params = {**SMALL, "noise": 0.1, "sampling": "over", "modality_dropout": 0.2}
    for d in ("a", "b"):
        model = build_model("mlp", params, 7, "cpu")
        model.fit(X[30:], y[30:], 3, X[:30], y[:30], blocks=[(0, 2), (2, 5)])
        save_model(model, tmp_path / d, ["a", "b", "c"])
    for name in ("model.json", "model.npz"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_early_stopping_restores_best_checkpoint():
    X, y = blobs()
    Xv, yv = X[:30], (y[:30] + 1) % 3  # learning train makes val worse: stops early
    params = {**SMALL, "epochs": 200, "patience": 3, "dropout": 0.0, "optimizer": "adam"}
    model = build_model("mlp", params, 0, "cpu").fit(X, y, 3, Xv, yv)
    assert len(model.log_) == model.best_epoch_ + 3 < 200
    proba = model.predict_proba(Xv)
    loss = -np.mean(np.log(proba[np.arange(30), yv]))
    assert loss == pytest.approx(min(r["val_loss"] for r in model.log_), rel=1e-4)


def imbalanced():
    X, y = blobs(300, d=2, seed=3)
    rng = np.random.default_rng(0)
    X = X + rng.normal(0, 4.0, X.shape).astype(np.float32)  # classes overlap
    keep = (y != 0) | (np.arange(300) < 15)  # class 0: 5 of 205 rows
    return X[keep], y[keep], X, y


@pytest.mark.parametrize("fix", [{"class_weight": "balanced"}, {"sampling": "over"},
                                 {"sampling": "under"}])
def test_imbalance_handling_raises_rare_class_recall(fix):
    X, y, Xall, yall = imbalanced()
    base = {**SMALL, "epochs": 30, "dropout": 0.0}
    plain = build_model("mlp", base, 0, "cpu").fit(X, y, 3)
    fixed = build_model("mlp", {**base, **fix}, 0, "cpu").fit(X, y, 3)
    rare = yall == 0

    def recall(m):
        return float((m.predict_proba(Xall[rare]).argmax(1) == 0).mean())

    assert recall(plain) < 0.5
    assert recall(fixed) > recall(plain) + 0.3


def multitask_data(n=120, seed=0):
    X, y = blobs(n, seed=seed)
    rng = np.random.default_rng(seed)
    parity = (np.arange(n) // 3) % 2  # a second class, from other directions
    X[:, 3] += np.where(parity == 1, 3.0, -3.0)
    value = X[:, 4] * 2.0 + rng.normal(0, 0.1, n)
    Y = np.stack([y, parity, value], 1).astype(np.float64)
    tasks = [{"name": "label", "kind": "classification", "n_classes": 3},
             {"name": "parity", "kind": "classification", "n_classes": 2},
             {"name": "value", "kind": "regression"}]
    return X, Y, tasks


def test_multitask_heads(tmp_path):
    X, Y, tasks = multitask_data()
    Y[::10, 1] = -1  # some targets missing
    Y[::7, 2] = np.nan
    params = {**SMALL, "epochs": 60, "task_weights": {"value": 0.5}}
    model = build_model("mlp", params, 0, "cpu").fit_tasks(X[60:], Y[60:], tasks, X[30:60],
                                                          Y[30:60])
    X, Y = X[:30], Y[:30]  # scored on rows it never saw
    out = model.predict_tasks(X)
    assert set(out) == {"label", "parity", "value"}
    assert out["label"].shape == (30, 3) and out["parity"].shape == (30, 2)
    assert out["value"].shape == (30,)
    assert (out["label"].argmax(1) == Y[:, 0]).mean() > 0.9
    assert (out["parity"].argmax(1) == Y[:, 1])[Y[:, 1] >= 0].mean() > 0.9
    ok = ~np.isnan(Y[:, 2])
    assert np.sqrt(np.mean((out["value"][ok] - Y[ok, 2]) ** 2)) < 0.5 * Y[ok, 2].std()
    assert model.tasks_[2]["weight"] == 0.5
    np.testing.assert_array_equal(model.predict_proba(X), out["label"])
    save_model(model, tmp_path, ["a", "b", "c"])
    restored, _ = load_model(tmp_path)
    np.testing.assert_array_equal(restored.predict_tasks(X)["value"], out["value"])


def test_multitask_on_a_learned_fusion_model():
    X, Y, tasks = multitask_data()
    # modality dropout (the learned fusions' default 0.3) off: the test is about the tasks
    model = build_model("late_repr", {"epochs": 40, "lr": 0.01, "embed": 16, "head": [16],
                                      "modality_dropout": 0.0}, 0, "cpu")
    model.fit_tasks(X[30:], Y[30:], tasks, blocks=[(0, 3), (3, 5)])
    out = model.predict_tasks(X[:30])
    assert (out["parity"].argmax(1) == Y[:30, 1]).mean() > 0.9


def test_unknown_task_weight():
    X, Y, tasks = multitask_data()
    with pytest.raises(UsageError, match="task_weights"):
        build_model("mlp", {**SMALL, "task_weights": {"colour": 2}}, 0, "cpu").fit_tasks(
            X, Y, tasks)


def test_modality_dropout_survives_a_missing_modality():
    X, y, blocks = two_modalities(150, 0)
    Xt, yt, _ = two_modalities(300, 1)
    missing = Xt.copy()
    missing[:, :8] = 0.0  # modality A is missing: its block is at its (zero) train mean
    result = {}
    for p in (0.0, 0.5):
        model = build_model("late_repr", {"epochs": 40, "lr": 0.01, "batch_size": 32,
                                          "embed": 16, "head": [16], "modality_dropout": p},
                            0, "cpu")
        model.fit(X, y, 3, blocks=blocks)
        result[p] = (acc(model, Xt, yt), acc(model, missing, yt))
    full, without = result[0.5]
    assert full > 0.95 and without >= 0.9 * full  # keeps most of its accuracy
    assert full - without < (result[0.0][0] - result[0.0][1]) - 0.05  # loses less than plain


def test_modality_dropout_needs_blocks():
    X, y = blobs()
    with pytest.raises(UsageError, match="concat"):
        build_model("mlp", {**SMALL, "modality_dropout": 0.3}, 0, "cpu").fit(X, y, 3)
