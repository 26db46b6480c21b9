"""The fast paths of the audio and image extractors give, bit for bit, what the libraries'
own functions give (librosa.yin, librosa.stft and melspectrogram, skimage's hog), and the
audio extractors of one batch compute its spectrogram once between them."""

from __future__ import annotations

import numpy as np
import pytest

from mmcli.dataset import AudioClips
from mmcli.extractors import build_extractor


def _clips(rate: int) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    t = np.arange(rate) / rate
    tones = [(0.3 * np.sin(2 * np.pi * f * t * (1 + 0.2 * t)) * np.exp(-2 * t)
              + 0.01 * k * rng.standard_normal(rate)).astype(np.float32)
             for k, f in enumerate([80, 130, 210, 330, 470])]
    return [*tones, np.zeros(rate, np.float32),
            *(rng.standard_normal(n).astype(np.float32) * 0.1 for n in (300, 1100, 2500))]


@pytest.mark.parametrize("rate, params", [(16000, {}), (8000, {}),
                                          (22050, {"frame_length": 2048, "hop_length": 256,
                                                   "fmin": 80.0, "fmax": 400.0})])
def test_yin_is_librosas_bit_for_bit(rate, params, monkeypatch):
    import librosa

    from mmcli.extractors import audio

    monkeypatch.setattr(audio, "YIN_BLOCK", 7)  # blocks of part of a clip, and of clips
    p = build_extractor("prosody", "audio", params).params
    fmin, fmax = build_extractor("prosody", "audio", params)._bounds(rate)
    for length in (rate, 1100, 300):
        batch = np.stack([c[:length] for c in _clips(rate) if len(c) >= length])
        f0, frames = audio.yin(batch, fmin, fmax, rate, p.frame_length, p.hop_length)
        want = librosa.yin(batch, fmin=fmin, fmax=fmax, sr=rate, frame_length=p.frame_length,
                           hop_length=p.hop_length)
        assert f0.tobytes() == want.tobytes()
        half = p.frame_length // 2
        assert np.array_equal(frames, librosa.util.frame(
            np.pad(batch, [(0, 0), (half, half)]), frame_length=p.frame_length,
            hop_length=p.hop_length))


@pytest.mark.parametrize("orientations, cell, block, size", [(9, 8, 2, 64), (12, 6, 3, 48),
                                                             (9, 8, 1, 32), (9, 4, 4, 64)])
def test_hog_is_skimages_bit_for_bit(orientations, cell, block, size):
    from skimage.feature import hog

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 40, 70, 3), dtype=np.uint8)
    images[0] = 0  # a flat image: every block is zero
    images[1, :, 35:] = 255  # one edge
    ex = build_extractor("hog", "image", {"size": size, "orientations": orientations,
                                          "pixels_per_cell": cell, "cells_per_block": block})
    got = ex.fit(None).transform(images)
    from mmcli.extractors.image import _gray

    want = np.stack([hog(g, orientations=orientations, pixels_per_cell=(cell, cell),
                         cells_per_block=(block, block), block_norm="L2-Hys")
                     for g in _gray(images, size)])
    assert got.dtype == np.float32 and got.tobytes() == want.astype(np.float32).tobytes()


def test_hog_without_skimages_private_module_gives_the_same_features(monkeypatch):
    """The fast path uses skimage.feature._hoghistogram; a release without it (or with
    another signature) falls back to skimage.feature.hog per image: the same bytes."""
    import skimage.feature

    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (3, 40, 50, 3), dtype=np.uint8)
    ex = build_extractor("hog", "image", {}).fit(None)
    fast = ex.transform(images)
    real, calls = skimage.feature.hog, []  # (loads skimage's own hog, with its kernel)
    monkeypatch.setattr(skimage.feature, "hog", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr(skimage.feature, "_hoghistogram", None, raising=False)
    assert ex.transform(images).tobytes() == fast.tobytes() and len(calls) == 3


def test_audio_extractors_of_a_batch_share_its_spectrogram(monkeypatch):
    """mfcc, spectral, frames and logmel with the same framing run one STFT per group of
    equal-length clips between them, and each still gives what it computes alone."""
    import librosa

    clips = _clips(16000)
    names = ["mfcc", "spectral", "frames", "logmel", "chroma"]
    fitted = [build_extractor(n, "audio", {"n_fft": 512} if n == "chroma" else {}).fit(None)
              for n in names]
    alone = [ex.transform(AudioClips(clips, 16000)) for ex in fitted]
    calls = []
    stft = librosa.stft
    monkeypatch.setattr(librosa, "stft", lambda y, **kw: calls.append(y.shape) or stft(y, **kw))
    batch = AudioClips(clips, 16000)
    together = [ex.transform(batch) for ex in fitted]
    assert len(calls) == 4  # clips of 4 lengths, once each
    for a, b in zip(alone, together):
        assert a.tobytes() == b.tobytes()
    # a clip's features are those of the clip alone, whichever batch it is in
    for ex, want in zip(fitted, together):
        single = np.vstack([ex.transform(AudioClips([c], 16000)) for c in clips])
        assert single.tobytes() == want.tobytes()


def test_mel_spectra_are_librosas_melspectrogram():
    import librosa

    from mmcli.extractors.audio import mel_spectra

    clips = _clips(8000)
    got = mel_spectra(AudioClips(clips, 8000), 256, 80, 32)
    for clip, mel in zip(clips, got):
        y = np.pad(clip, (0, max(0, 256 - len(clip))))
        want = librosa.feature.melspectrogram(y=y, sr=8000, n_fft=256, hop_length=80,
                                              n_mels=32)
        assert mel.tobytes() == want.tobytes()
