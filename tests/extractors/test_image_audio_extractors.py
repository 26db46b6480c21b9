"""Image and audio extractors: what the features mean."""

from __future__ import annotations

import numpy as np
import pytest

from mmcli.dataset import AudioClips
from mmcli.errors import UsageError
from mmcli.extractors import build_extractor


def solid_images(*colours, size=8) -> np.ndarray:
    return np.stack([np.full((size, size, 3), c, dtype=np.uint8) for c in colours])


def test_color_hist_rgb_bins():
    images = solid_images((255, 0, 128))
    ext = build_extractor("color_hist", "image", {"bins": 4}).fit(None)
    out = ext.transform(images)
    assert out.shape == (1, 12)
    np.testing.assert_array_equal(out[0], [0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 1, 0])


def test_color_hist_sums_to_one_per_channel():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 9, 7, 3), dtype=np.uint8)
    out = build_extractor("color_hist", "image", {"bins": 16}).fit(None).transform(images)
    np.testing.assert_allclose(out.reshape(5, 3, 16).sum(axis=2), 1.0, rtol=1e-6)


def test_color_hist_hsv_differs_from_rgb():
    images = solid_images((200, 40, 40), (40, 40, 200))
    rgb = build_extractor("color_hist", "image", {"bins": 8}).fit(None).transform(images)
    hsv = build_extractor("color_hist", "image", {"bins": 8, "space": "hsv"}).fit(None)
    out = hsv.transform(images)
    assert not np.array_equal(rgb, out)
    assert out[0, 0] == 1.0  # red: hue 0 -> first hue bin
    assert out[1, :8].argmax() == 5  # blue: hue 240 degrees -> bin 5 of 8


def test_color_hist_bad_space():
    with pytest.raises(UsageError, match="lab"):
        build_extractor("color_hist", "image", {"space": "lab"}).fit(None)


def test_pixels_values():
    images = solid_images((255, 0, 51), size=16)
    ext = build_extractor("pixels", "image", {"size": 2}).fit(None)
    out = ext.transform(images)
    assert out.shape == (1, 12)
    np.testing.assert_allclose(out[0], np.tile([1.0, 0.0, 0.2], 4), atol=1e-6)
    gray = build_extractor("pixels", "image", {"size": 3, "grayscale": True}).fit(None)
    assert gray.transform(images).shape == (1, 9)


def test_pixels_keep_layout():
    images = np.zeros((1, 8, 8, 3), dtype=np.uint8)
    images[0, :, 4:] = 255  # right half white
    out = build_extractor("pixels", "image", {"size": 2, "grayscale": True}).fit(None)
    np.testing.assert_allclose(out.transform(images)[0], [0, 1, 0, 1])


def tone(freq: float, rate: int = 8000, seconds: float = 0.3) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_mfcc_dim_and_tones_differ():
    clips = AudioClips([tone(300), tone(300), tone(1500)], 8000)
    ext = build_extractor("mfcc", "audio", {"n_mfcc": 10}).fit(None)
    assert ext.dim_ == 40
    out = ext.transform(clips)
    assert out.shape == (3, 40)
    np.testing.assert_array_equal(out[0], out[1])
    assert np.abs(out[0] - out[2]).max() > 1.0


def test_mfcc_short_clips():
    clips = AudioClips([np.zeros(1, np.float32), tone(440)[:300], tone(440)[:600]], 8000)
    out = build_extractor("mfcc", "audio", {}).fit(None).transform(clips)
    assert out.shape == (3, 80)
    assert np.all(np.isfinite(out))
