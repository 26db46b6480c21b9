"""The contract of every learned-fusion network, taken from the models registry: each learns
on rows it never saw, has the right shapes, round-trips byte for byte, is deterministic, needs
blocks, works with two to four blocks and with several tasks. A new fusion network (one class
in mmcli/models/fusion_nets/) is tested here without any change to this file."""

from __future__ import annotations

import numpy as np
import pytest

from mmcli.errors import UsageError
from mmcli.models import MODELS, build_model, load_model, save_model
from mmcli.models.fusion_nets import FusionModel

from .toy import split, three_blocks

#: every registered learned-fusion network
FUSION = [n for n in MODELS.names() if issubclass(MODELS.get(n), FusionModel)]
#: every registered model that refuses to fit without blocks
NEEDS_BLOCKS = [n for n in MODELS.names() if MODELS.get(n).needs_blocks]
SMALL = {"epochs": 40, "lr": 0.01, "batch_size": 16, "embed": 8, "head": [8], "tensor_dim": 3,
         "rank": 2, "dropout": 0.0}


def fitted(name, seed=0):
    """The model fitted on 90 rows (early stopping on 30 others); X, y: 60 unseen rows."""
    X, y, blocks = three_blocks(180)
    (Xt, yt), (Xv, yv), (Xs, ys) = split(X, y, 30, 60)
    model = build_model(name, SMALL, seed, "cpu")
    return model.fit(Xt, yt, 3, Xv, yv, blocks=blocks), Xs, ys


def test_the_registry_has_fusion_networks():
    assert FUSION and set(FUSION) <= set(NEEDS_BLOCKS)


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


@pytest.mark.parametrize("name", FUSION)
def test_same_seed_same_state(name, tmp_path):
    for d in ("a", "b"):
        model, _, _ = fitted(name, seed=3)
        save_model(model, tmp_path / d, ["a", "b", "c"])
    for f in ("model.json", "model.npz"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()


@pytest.mark.parametrize("name", FUSION)
@pytest.mark.parametrize("n_blocks", [2, 4])
def test_any_number_of_blocks_and_tasks(name, n_blocks):
    rng = np.random.default_rng(n_blocks)
    X = rng.normal(0, 1, (24, 2 * n_blocks)).astype(np.float32)
    Y = np.stack([np.arange(24) % 3, rng.normal(0, 1, 24)], 1)
    tasks = [{"name": "label", "kind": "classification", "n_classes": 3},
             {"name": "value", "kind": "regression"}]
    model = build_model(name, {**SMALL, "epochs": 2}, 0, "cpu")
    model.fit_tasks(X, Y, tasks, blocks=[(2 * k, 2 * k + 2) for k in range(n_blocks)])
    out = model.predict_tasks(X)
    assert out["label"].shape == (24, 3) and out["value"].shape == (24,)
    assert np.isfinite(out["value"]).all()


@pytest.mark.parametrize("name", NEEDS_BLOCKS)
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
