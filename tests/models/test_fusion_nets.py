"""Learned-fusion models: each learns, has the right shapes, round-trips, needs blocks."""

from __future__ import annotations

import numpy as np
import pytest

from mmcli.errors import UsageError
from mmcli.models import MODELS, build_model, load_model, save_model

from .toy import split, three_blocks

FUSION = ["late_repr", "gmu", "lowrank", "attention", "tensor_layer"]
SMALL = {"epochs": 40, "lr": 0.01, "batch_size": 16, "embed": 8, "head": [8], "tensor_dim": 3,
         "rank": 2, "dropout": 0.0}


def fitted(name, seed=0):
    """The model fitted on 90 rows (early stopping on 30 others); X, y: 60 unseen rows."""
    X, y, blocks = three_blocks(180)
    (Xt, yt), (Xv, yv), (Xs, ys) = split(X, y, 30, 60)
    model = build_model(name, SMALL, seed, "cpu")
    return model.fit(Xt, yt, 3, Xv, yv, blocks=blocks), Xs, ys


@pytest.mark.parametrize("name", FUSION)
def test_learns_and_round_trips(name, tmp_path):
    model, X, y = fitted(name)
    proba = model.predict_proba(X)
    assert proba.shape == (60, 3)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)
    assert (proba.argmax(1) == y).mean() > 0.8  # on rows it never saw
    save_model(model, tmp_path, ["a", "b", "c"])
    restored, _ = load_model(tmp_path)
    assert restored.blocks_.ranges == [(0, 6), (6, 9), (9, 10)]
    np.testing.assert_array_equal(restored.predict_proba(X), proba)


def test_same_seed_same_model():
    a, X, _ = fitted("gmu", seed=3)
    b, _, _ = fitted("gmu", seed=3)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


@pytest.mark.parametrize("name", [*FUSION, "late_decision"])
def test_needs_blocks(name):
    X, y, _ = three_blocks()
    assert MODELS.get(name).needs_blocks
    with pytest.raises(UsageError, match="mmcli fuse --method concat"):
        build_model(name, {}, 0, "cpu").fit(X, y, 3)


def test_tensor_layer_too_large():
    X, y, _ = three_blocks()
    model = build_model("tensor_layer", {"tensor_dim": 40}, 0, "cpu")
    with pytest.raises(UsageError, match="tensor_dim"):
        model.fit(X, y, 3, blocks=[(k, k + 1) for k in range(10)])
