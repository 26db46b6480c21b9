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
    assert ext.dim_ == 10 * 2 * 5  # coefficients and deltas; mean, std, p10, p50, p90
    out = ext.transform(clips)
    assert out.shape == (3, 100)
    np.testing.assert_array_equal(out[0], out[1])
    assert np.abs(out[0] - out[2]).max() > 1.0


def test_mfcc_short_clips():
    clips = AudioClips([np.zeros(1, np.float32), tone(440)[:300], tone(440)[:600]], 8000)
    out = build_extractor("mfcc", "audio", {}).fit(None).transform(clips)
    assert out.shape == (3, 200)
    assert np.all(np.isfinite(out))


def stripes(vertical: bool, size: int = 32) -> np.ndarray:
    im = np.zeros((size, size, 3), dtype=np.uint8)
    if vertical:
        im[:, ::8] = 255
        im[:, 1::8] = 255
    else:
        im[::8] = 255
        im[1::8] = 255
    return im


def test_hog_sees_edge_orientation_not_colour():
    ext = build_extractor("hog", "image", {"size": 32, "pixels_per_cell": 8}).fit(None)
    assert ext.dim_ == 3 * 3 * 4 * 9
    v, h = stripes(True), stripes(False)
    red_v = v.copy()
    red_v[..., 1:] = 0  # the same edges, in red
    out = ext.transform(np.stack([v, h, red_v]))
    orient = out.reshape(3, -1, 9).sum(axis=1)
    assert orient[0].argmax() != orient[1].argmax()  # different dominant orientation
    np.testing.assert_allclose(out[0], out[2], atol=0.35)  # colour does not matter much
    assert np.abs(out[0] - out[1]).max() > 0.3


def test_hog_size_too_small_is_a_usage_error():
    with pytest.raises(UsageError, match="'size' parameter of extractor 'hog'"):
        build_extractor("hog", "image", {"size": 16, "pixels_per_cell": 16})


def test_lbp_flat_image_is_one_code_per_cell():
    ext = build_extractor("lbp", "image", {"grid": 2}).fit(None)
    out = ext.transform(solid_images((90, 90, 90), size=12))
    assert out.shape == (1, 2 * 2 * 10)
    cells = out.reshape(4, 10)
    np.testing.assert_allclose(cells.sum(axis=1), 1.0, rtol=1e-6)
    # a flat image: inside the image every pixel has the "all neighbours >= centre" code
    assert (cells.argmax(axis=1) == 8).all() and (cells[:, 8] > 0.6).all()
    noisy = np.random.default_rng(0).integers(0, 256, (1, 12, 12, 3), dtype=np.uint8)
    assert (ext.transform(noisy).reshape(4, 10)[:, 8] < 0.3).all()


def test_pixels_pca_is_fitted_on_train_and_frozen():
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (20, 8, 8, 3), dtype=np.uint8)
    ext = build_extractor("pixels_pca", "image", {"size": 4, "components": 50}).fit(train)
    assert ext.dim_ == 20  # min(components, train images, 4 * 4 * 3)
    out = ext.transform(train)
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-5)  # centred on train
    white = np.full((1, 8, 8, 3), 255, np.uint8)
    expected = (white[0, :4, :4].reshape(-1) / 255.0 - ext.mean_) @ ext.components_.T
    np.testing.assert_allclose(ext.transform(white)[0], expected, rtol=1e-5, atol=1e-6)
    whiten = build_extractor("pixels_pca", "image", {"size": 4, "whiten": True}).fit(train)
    np.testing.assert_allclose(whiten.transform(train).std(axis=0, ddof=1)[:5], 1.0, rtol=1e-3)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_cnn_batches_normalisation_and_dimension(tmp_path):
    import torch

    from .helpers import write_tiny_cnn

    model = write_tiny_cnn(tmp_path / "m.pt", channels=5)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (7, 16, 16, 3), dtype=np.uint8)
    small = build_extractor("cnn", "image", {"model": str(model), "input_size": 16,
                                             "batch_size": 2}).fit(None)
    big = build_extractor("cnn", "image", {"model": str(model), "input_size": 16,
                                           "batch_size": 64}).fit(None)
    assert small.dim_ == 5
    out = small.transform(images)
    np.testing.assert_allclose(out, big.transform(images), rtol=1e-5, atol=1e-6)
    net = torch.jit.load(str(model))
    x = (images / 255.0 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    expected = net(torch.tensor(x.transpose(0, 3, 1, 2), dtype=torch.float32)).detach().numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)


def test_cnn_goes_to_worker_processes_without_its_loaded_module(tmp_path):
    import pickle

    from .helpers import write_tiny_cnn

    model = write_tiny_cnn(tmp_path / "m.pt")
    ext = build_extractor("cnn", "image", {"model": str(model), "input_size": 16}).fit(None)
    assert ext._module is not None and not ext.parallel
    copy = pickle.loads(pickle.dumps(ext))  # what a spawned worker receives
    assert getattr(copy, "_module", None) is None
    images = np.zeros((2, 16, 16, 3), np.uint8)
    np.testing.assert_array_equal(copy.transform(images), ext.transform(images))


def test_cnn_bad_model_files(tmp_path):
    with pytest.raises(UsageError, match="needs a model file"):
        build_extractor("cnn", "image", {})
    with pytest.raises(UsageError, match="does not exist"):
        build_extractor("cnn", "image", {"model": str(tmp_path / "none.pt")}).fit(None)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model at all")
    with pytest.raises(UsageError) as exc:
        build_extractor("cnn", "image", {"model": str(junk)}).fit(None)
    assert "junk.pt cannot be loaded" in exc.value.message
    assert "torch.jit.save" in exc.value.hint
    with pytest.raises(UsageError, match="device"):
        build_extractor("cnn", "image", {"model": str(junk), "device": "tpu"})


def test_cnn_state_refuses_a_modified_model_copy(tmp_path):
    from mmcli.errors import ArtifactError
    from mmcli.extractors import EXTRACTORS

    from .helpers import write_tiny_cnn

    model = write_tiny_cnn(tmp_path / "m.pt")
    ext = build_extractor("cnn", "image", {"model": str(model), "input_size": 16}).fit(None)
    state, arrays = ext.get_state()
    assert state["fitted"]["sha256"] and state["files"] == ["model.pt"]
    copy = tmp_path / "copy.pt"
    copy.write_bytes(model.read_bytes() + b"x")
    with pytest.raises(ArtifactError, match="was modified"):
        EXTRACTORS.get("cnn").from_state(state, arrays, {"model.pt": copy})
    with pytest.raises(ArtifactError, match="missing"):
        EXTRACTORS.get("cnn").from_state(state, arrays, {})


def test_mfcc_deltas_and_percentiles():
    clips = AudioClips([tone(300), tone(1500)], 8000)
    base = build_extractor("mfcc", "audio", {"n_mfcc": 10}).fit(None).transform(clips)
    plain = build_extractor("mfcc", "audio", {"n_mfcc": 10, "deltas": 0}).fit(None)
    assert plain.dim_ == 50
    np.testing.assert_allclose(plain.transform(clips), base[:, :50], rtol=1e-6)
    wide = build_extractor("mfcc", "audio", {"n_mfcc": 10, "deltas": 2,
                                             "stats": ["median", "p10", "p90"]}).fit(None)
    out = wide.transform(clips)
    assert wide.dim_ == 10 * 3 * 3 and out.shape == (2, 90)
    assert (out[:, 20:30] >= out[:, 10:20] - 1e-5).all()  # p90 >= p10 for each coefficient


@pytest.mark.parametrize("stats", [[], ["mean", "p200"], ["average"], "mean"])
def test_bad_stats_are_usage_errors(stats):
    with pytest.raises(UsageError, match="stats"):
        build_extractor("logmel", "audio", {"stats": stats})


def test_chroma_finds_the_pitch_class():
    a440 = tone(440, rate=16000, seconds=0.5)
    out = build_extractor("chroma", "audio", {}).fit(None).transform(AudioClips([a440], 16000))
    assert out.shape == (1, 24)
    assert out[0, :12].argmax() == 9  # C C# D D# E F F# G G# A -> A is index 9


def test_logmel_louder_band_for_higher_tone():
    clips = AudioClips([tone(300, 16000), tone(3000, 16000)], 16000)
    out = build_extractor("logmel", "audio", {"n_mels": 20}).fit(None).transform(clips)
    means = out[:, :20]
    assert means[0].argmax() < means[1].argmax()


def test_spectral_at_any_sample_rate():
    ext = build_extractor("spectral", "audio", {}).fit(None)
    assert ext.dim_ == (6 + 7) * 2
    for rate in (8000, 16000, 44100):
        low, high = tone(300, rate), tone(2500, rate)
        out = ext.transform(AudioClips([low, high], rate))
        assert np.isfinite(out).all()
        centroid = 7  # after the 7 contrast rows: the centroid's mean (fraction of Nyquist)
        assert out[0, centroid] < out[1, centroid]
        np.testing.assert_allclose(out[:, centroid] * rate / 2, [300, 2500], rtol=0.15)


def test_frames_layout_is_time_major():
    rate = 16000
    clip = np.concatenate([tone(300, rate, 0.2), tone(3000, rate, 0.2)])
    ext = build_extractor("frames", "audio", {"n_frames": 8, "n_mels": 16}).fit(None)
    seq = ext.transform(AudioClips([clip], rate)).reshape(1, 8, 16)
    assert seq[0, 0].argmax() < seq[0, -1].argmax()  # low tone first, high tone last
    pad = build_extractor("frames", "audio", {"n_frames": 100, "n_mels": 16, "mode": "pad"})
    padded = pad.fit(None).transform(AudioClips([tone(300, rate, 0.1)], rate)).reshape(100, 16)
    np.testing.assert_allclose(padded[-1], np.log(1e-6))  # 0.1 s = 11 frames, then silence
    assert padded[:5].max() > padded[-1].max()


def test_pixels_size_0_keeps_the_preprocessed_image():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 6, 4, 3), dtype=np.uint8)  # height 6, width 4
    ext = build_extractor("pixels", "image", {"size": 0})
    assert ext.needs_fit
    ext.fit(images[:2])
    assert ext.dim_ == 6 * 4 * 3
    assert ext.structure() == {"layout": "image", "shape": [6, 4, 3]}
    out = ext.transform(images)
    np.testing.assert_allclose(out.reshape(3, 6, 4, 3), images / 255.0, rtol=1e-6)
    assert build_extractor("pixels", "image", {"size": 5}).fit(None).structure() == \
        {"layout": "image", "shape": [5, 5, 3]}


def test_frames_structure_is_frame_major():
    ext = build_extractor("frames", "audio", {"n_frames": 7, "n_mels": 5}).fit(None)
    assert ext.structure() == {"layout": "logmel", "shape": [7, 5]}


@pytest.mark.parametrize("bins", [16, 7, 256, 1])
def test_color_histogram_counts_like_numpy_histogram(bins):
    """The fast per-byte counting gives exactly numpy's histogram over [0, 256)."""
    images = np.random.default_rng(bins).integers(0, 256, (5, 9, 7, 3), dtype=np.uint8)
    ex = build_extractor("color_hist", "image", {"bins": bins}).fit(images)
    got = ex.transform(images)
    want = np.array([np.concatenate([np.histogram(im[..., c], bins, (0, 256))[0] / 63
                                     for c in range(3)]) for im in images], dtype=np.float32)
    assert np.array_equal(got, want)
    assert ex.transform(images[:0]).shape == (0, 3 * bins)


@pytest.mark.parametrize("name, params", [("mfcc", {}), ("mfcc", {"deltas": 2}), ("prosody", {}),
                                          ("logmel", {}), ("frames", {}),
                                          ("frames", {"mode": "pad"})])
def test_audio_features_of_a_clip_do_not_depend_on_its_chunk(name, params):
    """The FFTs of equal-length clips run as one batch; a clip's features are still bit for
    bit those it gets alone (incremental runs compute changed items in other chunks)."""
    rng = np.random.default_rng(0)
    clips = [rng.standard_normal(n).astype(np.float32) * 0.1
             for n in [4000] * 6 + [300, 100, 4000, 12345, 300, 100]]
    audio = AudioClips(clips, 8000)
    extractor = build_extractor(name, "audio", params).fit(audio)
    together = extractor.transform(audio)
    alone = np.vstack([extractor.transform(AudioClips([c], 8000)) for c in clips])
    assert np.array_equal(together, alone)
    assert np.array_equal(extractor.transform(AudioClips(clips[::-1], 8000)), together[::-1])


def prosody_of(*clips, rate=16000) -> dict[str, np.ndarray]:
    from mmcli.extractors.audio import PROSODY_FEATURES

    out = build_extractor("prosody", "audio", {}).fit(None).transform(AudioClips(list(clips),
                                                                                 rate))
    return dict(zip(PROSODY_FEATURES, out.T))


def sine(freq: float, amplitude: float = 0.5, seconds: float = 0.6, rate: int = 16000):
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("freq, rate", [(90.0, 16000), (150.0, 16000), (220.0, 8000),
                                        (440.0, 22050)])
def test_prosody_finds_the_pitch_of_a_sine(freq, rate):
    f = prosody_of(sine(freq, rate=rate), rate=rate)
    assert f["voiced_fraction"][0] > 0.9
    hz = 100 * 2 ** (f["f0_p50"][0] / 12)  # semitones re 100 Hz
    assert abs(hz - freq) / freq < 0.03
    assert f["f0_std"][0] < 0.2 and abs(f["f0_slope"][0]) < 1.0  # a steady tone


def test_prosody_silence_has_no_voiced_frame_and_zero_f0_fill():
    rng = np.random.default_rng(0)
    f = prosody_of(np.zeros(8000, np.float32), (rng.standard_normal(8000) * 0.1).astype(np.float32))
    np.testing.assert_array_equal(f["voiced_fraction"], [0.0, 0.0])  # silence, white noise
    for name in ("f0_mean", "f0_std", "f0_p10", "f0_p90", "f0_range", "f0_slope"):
        np.testing.assert_array_equal(f[name], [0.0, 0.0])
    assert f["pause_fraction"][0] == 1.0 and f["energy_mean"][0] == pytest.approx(np.log(1e-5))


def test_prosody_louder_clip_has_higher_energy_and_the_same_pitch():
    f = prosody_of(sine(180.0, 0.05), sine(180.0, 0.5))
    for name in ("energy_mean", "energy_p10", "energy_p50", "energy_p90"):
        assert f[name][1] - f[name][0] == pytest.approx(np.log(10), abs=0.05)  # 10x louder
    assert f["f0_mean"][1] == pytest.approx(f["f0_mean"][0], abs=0.05)


def test_prosody_rising_pitch_rate_and_duration():
    rate = 16000
    t = np.arange(2 * rate) / rate
    chirp = 0.5 * np.sin(2 * np.pi * (120 * t + 30 * t ** 2))  # 120 -> 240 Hz in 2 s
    bursts = np.clip(np.sin(2 * np.pi * 2.5 * t), 0, None) * sine(200.0, 0.5, 2.0)  # 5 bursts
    f = prosody_of(chirp.astype(np.float32), bursts.astype(np.float32))
    assert f["f0_slope"][0] == pytest.approx(6.0, abs=1.0)  # 12 semitones in 2 s
    assert f["energy_peaks_per_s"][1] == pytest.approx(2.5)  # 5 peaks in 2 s
    assert f["voiced_segments_per_s"][1] == pytest.approx(2.5)
    assert f["log_duration"][0] == pytest.approx(np.log(2.0))


def test_frames_applies_to_short_clips_of_similar_length_only():
    frames = build_extractor("frames", "audio", {})
    short = AudioClips([np.zeros(n, np.float32) for n in [8000] * 9 + [7000]], 8000)
    assert frames.applies_to(short)[0]
    long = AudioClips([np.zeros(n * 8000, np.float32) for n in (3, 4, 5)], 8000)
    applies, reason = frames.applies_to(long)
    assert not applies and "median 4.00 s" in reason and "short_seconds" in reason
    varied = AudioClips([np.zeros(n, np.float32) for n in (2000, 4000, 8000, 12000)], 8000)
    applies, reason = frames.applies_to(varied)
    assert not applies and "length_spread" in reason
    loose = build_extractor("frames", "audio", {"short_seconds": 10.0, "length_spread": 2.0})
    assert loose.applies_to(varied)[0] and loose.applies_to(long)[0]
