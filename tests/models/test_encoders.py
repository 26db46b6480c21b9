"""Encoders that fit the input: CNN on image blocks, GRU / Transformer on frames and tokens."""

from __future__ import annotations

import numpy as np
import pytest

from mmcli.blocks import Blocks
from mmcli.errors import UsageError
from mmcli.models import build_model, load_model, save_model
from mmcli.models.encoders import choose_encoders

from .toy import STRUCTURED_LAYOUTS, split, structured

SMALL = {"epochs": 25, "lr": 0.01, "batch_size": 16, "embed": 8, "head": [8], "dropout": 0.0,
         "tensor_dim": 3, "rank": 2, "seq_dim": 8, "heads": 2, "cnn_channels": [4, 8]}


def fitted(name, params, seed=0, n=60):
    """The model fitted on n rows (early stopping on 20 others); X, y: 30 unseen rows."""
    X, y, blocks = structured(n + 50)
    (Xt, yt), (Xv, yv), (Xs, ys) = split(X, y, 20, 30)
    model = build_model(name, {**SMALL, **params}, seed, "cpu")
    blocks = Blocks.from_ranges(blocks, STRUCTURED_LAYOUTS)
    return model.fit(Xt, yt, 3, Xv, yv, blocks=blocks), Xs, ys


def test_auto_picks_by_layout():
    p = build_model("late_repr", {"encoder": "auto"}, 0, "cpu").params
    assert choose_encoders(p, STRUCTURED_LAYOUTS, 4, "late_repr") == \
        ["cnn", "gru", "transformer", "mlp"]
    p = build_model("late_repr", {"encoders": {"audio": "transformer", "text": "gru"}}, 0,
                    "cpu").params
    assert choose_encoders(p, STRUCTURED_LAYOUTS, 4, "late_repr") == \
        ["mlp", "transformer", "gru", "mlp"]
    default = build_model("gmu", {}, 0, "cpu").params  # the default stays an MLP per block
    assert choose_encoders(default, STRUCTURED_LAYOUTS, 4, "gmu") == ["mlp"] * 4


@pytest.mark.parametrize("name, params", [
    ("late_repr", {"encoder": "auto"}),
    ("late_repr", {"encoders": {"audio": "transformer", "text": "gru"}}),
    ("gmu", {"encoder": "auto"}),
    ("attention", {"encoder": "auto", "seq_layers": 2}),
])
def test_encoders_learn_and_round_trip(name, params, tmp_path):
    model, X, y = fitted(name, params)
    proba = model.predict_proba(X)
    assert (proba.argmax(1) == y).mean() > 0.9
    save_model(model, tmp_path, ["a", "b", "c"])
    restored, _ = load_model(tmp_path)
    assert restored.blocks_.layouts == STRUCTURED_LAYOUTS
    np.testing.assert_array_equal(restored.predict_proba(X), proba)


@pytest.mark.parametrize("encoders", [{"image": "cnn"}, {"audio": "gru"},
                                      {"text": "transformer"}])
def test_each_encoder_alone_reads_its_block(encoders):
    # only the structured block is informative enough without the others
    X, y, blocks = structured()
    column = next(iter(encoders))
    k = [info["column"] for info in STRUCTURED_LAYOUTS].index(column)
    a, z = blocks[k]
    model = build_model("late_repr", {**SMALL, "encoders": encoders}, 0, "cpu")
    model.fit(X[:, a:z], y, 3,
              blocks=Blocks.from_ranges([(0, z - a)], [STRUCTURED_LAYOUTS[k]]))
    assert (model.predict_proba(X[:, a:z]).argmax(1) == y).mean() > 0.9


def test_same_seed_byte_identical_state_with_augmentation(tmp_path):
    params = {"encoder": "auto", "epochs": 4,
              "augment": {"flip": 0.5, "rotate": 10, "crop": 0.2, "gain_db": 3,
                          "time_shift": 2, "noise_snr_db": 10, "token_drop": 0.2,
                          "token_unk": 0.1}}
    for d in ("a", "b"):
        model, _, _ = fitted("late_repr", params, seed=5)
        save_model(model, tmp_path / d, ["a", "b", "c"])
    for name in ("model.json", "model.npz"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    other, _, _ = fitted("late_repr", params, seed=6)
    save_model(other, tmp_path / "c", ["a", "b", "c"])
    assert (tmp_path / "c" / "model.npz").read_bytes() != (tmp_path / "a" / "model.npz")\
        .read_bytes()


def test_token_encoders_ignore_padding_and_survive_an_empty_text():
    model, X, _ = fitted("late_repr", {"encoders": {"text": "transformer"}, "epochs": 2})
    enc = model.net_.encoders[2]
    import torch

    ids = torch.tensor([[5.0, 3.0, 0, 0, 0, 0, 0], [0.0] * 7])
    with torch.no_grad():
        out = enc(ids)
        alone = enc(ids[:1])
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[:1], alone)
    gru, _, _ = fitted("late_repr", {"encoders": {"text": "gru"}, "epochs": 2})
    with torch.no_grad():
        short = gru.net_.encoders[2](torch.tensor([[5.0, 3.0, 0, 0, 0, 0, 0]]))
        # packed: the GRU stops at the last token, padding steps never run
        manual = gru.net_.encoders[2].gru(gru.net_.encoders[2].embed(
            torch.tensor([[5, 3]])))[1][-1]
        expected = gru.net_.encoders[2].out(manual)
    torch.testing.assert_close(short, expected)


@pytest.mark.parametrize("params, match", [
    ({"encoder": "cnn"}, "mlp or auto"),
    ({"encoders": {"image": "resnet"}}, "mlp, cnn, gru, transformer"),
    ({"cnn_channels": []}, "cnn_channels"),
    ({"augment": {"flipp": 0.5}}, "did you mean 'flip'"),
    ({"augment": {"flip": 1.5}}, "augment.flip"),
    ({"augment": {"time_shift": -1}}, "augment.time_shift"),
])
def test_bad_encoder_params_are_usage_errors(params, match):
    with pytest.raises(UsageError, match=match):
        build_model("late_repr", params, 0, "cpu")


def test_seq_dim_must_divide_into_heads_only_for_a_transformer():
    with pytest.raises(UsageError, match="not divisible by heads"):
        fitted("late_repr", {"encoder": "auto", "seq_dim": 10, "heads": 4})
    fitted("late_repr", {"encoders": {"audio": "gru"}, "seq_dim": 10, "heads": 4})


@pytest.mark.parametrize("encoders, match", [
    ({"audio": "cnn"}, "encoder 'cnn' cannot read modality 'audio': it is a logmel block"),
    ({"value": "gru"}, "it is a plain feature vector"),
    ({"video": "cnn"}, "'video', which is not a modality"),
])
def test_encoder_that_cannot_read_its_block(encoders, match):
    with pytest.raises(UsageError, match=match):
        fitted("late_repr", {"encoders": encoders})
