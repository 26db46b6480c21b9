"""On-the-fly augmentation: each one changes the training inputs as documented, in the
extractor's units, deterministically for a seed, and never touches val / eval / predict."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mmcli.blocks import Blocks
from mmcli.errors import UsageError
from mmcli.models import build_model
from mmcli.models.augment import Augmenter, AugmentParams

from .toy import STRUCTURED_LAYOUTS, structured

SILENCE = math.log(1e-6)


def augment(X, blocks, norms=None, seed=0, **params):
    aug = Augmenter(AugmentParams(**params), blocks, STRUCTURED_LAYOUTS, norms, "cpu")
    assert aug.active
    return aug(torch.as_tensor(X), np.random.default_rng(seed)).numpy()


def test_flip_in_pixel_units_through_the_fusion_normalisation():
    X, _, blocks = structured(8)
    mean = np.random.default_rng(1).random(192).astype(np.float32)
    norms = [(mean, np.full(192, 2.0, dtype=np.float32)), None, None, None]
    normed = X.copy()
    normed[:, :192] = (X[:, :192] - mean) / 2.0
    out = augment(normed, blocks, norms, flip=0.999999)
    flipped = X[:, :192].reshape(8, 8, 8, 3)[:, :, ::-1].reshape(8, -1)
    np.testing.assert_allclose(out[:, :192] * 2.0 + mean, flipped, atol=1e-6)
    np.testing.assert_array_equal(out[:, 192:], normed[:, 192:])  # other blocks untouched


def test_rotate_and_crop_resample_within_the_image_values():
    X, _, blocks = structured(8)
    out = augment(X, blocks, rotate=30, crop=0.3)
    img, new = X[:, :192], out[:, :192]
    assert not np.allclose(new, img)
    assert new.min() >= img.min() - 1e-6 and new.max() <= img.max() + 1e-6  # bilinear
    np.testing.assert_array_equal(out[:, 192:], X[:, 192:])


def test_gain_adds_decibels_to_the_log_mel_frames():
    X, _, blocks = structured(8)
    out = augment(X, blocks, gain_db=6)
    delta = (out - X)[:, 192:222]
    per_row = delta[:, :1]
    np.testing.assert_allclose(delta, np.broadcast_to(per_row, delta.shape), atol=1e-5)
    assert np.abs(per_row).max() <= 6 * math.log(10) / 10 + 1e-6
    assert np.abs(per_row).min() > 0


def test_time_shift_moves_whole_frames_and_pads_silence():
    X, _, blocks = structured(16)
    out = augment(X, blocks, time_shift=2)
    for a, b in zip(X[:, 192:222].reshape(16, 6, 5), out[:, 192:222].reshape(16, 6, 5)):
        shifts = [s for s in range(-2, 3)
                  if np.allclose(b[max(s, 0):6 + min(s, 0)], a[max(-s, 0):6 - max(s, 0)])]
        assert shifts, "not a shift"
        s = shifts[0]
        pad = b[:s] if s > 0 else b[6 + s:]
        np.testing.assert_allclose(pad, SILENCE, rtol=1e-6)


def test_noise_adds_power():
    X, _, blocks = structured(8)
    out = augment(X, blocks, noise_snr_db=0.0 + 10)
    mel, new = X[:, 192:222].astype(np.float64), out[:, 192:222]
    assert (new >= mel - 1e-5).all()  # log(exp(x) + n) >= x
    added = np.exp(new) - np.exp(mel)  # the noise power per bin
    ratio = added.mean(1) / np.exp(mel).mean(1)
    np.testing.assert_allclose(ratio, 0.1, rtol=0.6)  # SNR 10 dB, Exp(1) per bin


def test_token_drop_keeps_order_and_token_unk_marks_unknown():
    X, _, blocks = structured(30)
    ids = X[:, 222:229]
    out = augment(X, blocks, token_drop=0.5)[:, 222:229]
    assert (out != ids).any()
    for a, b in zip(ids, out):
        kept = list(b[b > 0])
        assert (b[len(kept):] == 0).all()  # left-aligned, then padding
        it = iter(a[a > 0])
        assert all(any(t == s for s in it) for t in kept)  # a subsequence, in order
    unk = augment(X, blocks, token_unk=0.5)[:, 222:229]
    changed = unk != ids
    assert changed.any() and (unk[changed] == 1).all() and (ids[changed] > 0).all()


def test_same_seed_same_augmentation():
    X, _, blocks = structured(8)
    params = {"flip": 0.5, "crop": 0.2, "gain_db": 3, "token_drop": 0.3}
    np.testing.assert_array_equal(augment(X, blocks, seed=3, **params),
                                  augment(X, blocks, seed=3, **params))
    assert not np.array_equal(augment(X, blocks, seed=3, **params),
                              augment(X, blocks, seed=4, **params))


def test_off_by_default_and_refused_where_it_would_change_nothing():
    assert not Augmenter(AugmentParams(), [(0, 3)], None, None, "cpu").active
    # an augmentation with no block to act on is a mistake, not a silent no-op
    with pytest.raises(UsageError, match="augment.flip is set but no modality block is an "
                                         "image"):
        Augmenter(AugmentParams(flip=0.5), [(0, 3)], [{"column": "x"}], None, "cpu")
    frames = [{"column": "speech", "layout": "logmel", "shape": [6, 4]}]
    assert Augmenter(AugmentParams(time_shift=5), [(0, 24)], frames, None, "cpu").active
    with pytest.raises(UsageError, match="time_shift 6 is not below the 6 frames"):
        Augmenter(AugmentParams(time_shift=6), [(0, 24)], frames, None, "cpu")


@pytest.mark.parametrize("name", ["late_repr", "mlp"])
def test_only_training_batches_are_augmented(name):
    X, y, blocks = structured(40)
    Xv = X[:10].copy()
    seen = {"train": [], "eval": []}
    params = {"epochs": 2, "batch_size": 40, "augment": {"flip": 0.9, "gain_db": 6,
                                                         "token_unk": 0.5}}
    if name == "late_repr":
        params.update(embed=4, head=[4], encoder="auto", seq_dim=4, heads=2, cnn_channels=[2])
    model = build_model(name, params, 0, "cpu")
    build = model._network

    def spying_network(*args):
        net = build(*args)
        forward = net.forward

        def spy(x):
            seen["train" if net.training else "eval"].append(x.detach().numpy().copy())
            return forward(x)
        net.forward = spy
        return net

    model._network = spying_network
    model.fit(X, y, 3, Xv, y[:10], blocks=Blocks.from_ranges(blocks, STRUCTURED_LAYOUTS))
    assert len(seen["train"]) == 2 and len(seen["eval"]) == 2
    for batch in seen["train"]:
        rows = np.sort(batch[:, :X.shape[1]], axis=0)
        assert not np.array_equal(rows, np.sort(X, axis=0))  # changed
    for batch in seen["eval"]:
        # validation: untouched; the presence mask after the blocks says every block is there
        np.testing.assert_array_equal(batch[:, :Xv.shape[1]], Xv)
        assert np.all(batch[:, Xv.shape[1]:] == 1)
    model.predict_proba(X)
    np.testing.assert_array_equal(seen["eval"][-1][:, :X.shape[1]], X)  # predict: untouched


def test_rotation_by_90_degrees_turns_a_square_image():
    img = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    aug = Augmenter(AugmentParams(rotate=90.0), [(0, 16)],
                    [{"column": "image", "layout": "image", "shape": [4, 4, 1]}], None, "cpu")

    class Fixed:  # every draw at the top of its range: +90 degrees, no crop, centred
        def uniform(self, low, high, n):
            return np.full(n, high, dtype=np.float64)

    out = aug(torch.as_tensor(img.reshape(1, -1)), Fixed()).numpy().reshape(4, 4)
    turned = [np.rot90(img[0, :, :, 0], k) for k in (1, -1)]
    assert any(np.allclose(out, t, atol=1e-4) for t in turned)
