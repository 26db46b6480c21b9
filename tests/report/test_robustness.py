"""Perturbations, relative robustness, ablation and noise on the shared pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from mmcli.dataset import AudioClips
from mmcli.errors import UsageError
from mmcli.fitted import FittedChain
from mmcli.report import robustness as R


def rng():
    return np.random.default_rng(0)


def test_severity_zero_leaves_data_unchanged():
    image = np.full((2, 8, 8, 3), 100, dtype=np.uint8)
    assert R.perturb("image", "gaussian_noise", image, 0.0, rng()) is image


def test_image_noise_and_blur_keep_uint8_and_change_what_they_should():
    image = np.zeros((2, 16, 16, 3), dtype=np.uint8)
    image[:, ::2] = 255  # stripes: blur flattens them
    noisy = R.perturb("image", "gaussian_noise", image, 0.5, rng())
    assert noisy.dtype == np.uint8 and noisy.shape == image.shape
    assert 0 < np.abs(noisy.astype(int) - image).mean()
    blurred = R.perturb("image", "blur", image, 1.0, rng())
    assert blurred.dtype == np.uint8
    assert blurred.std() < image.std() / 4


def test_audio_white_noise_has_the_documented_snr():
    t = np.arange(16000) / 16000
    clip = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    for severity, snr in ((0.25, 20.0), (0.75, 0.0)):
        noisy = R.perturb("audio", "white_noise", AudioClips([clip], 16000), severity, rng())
        noise = noisy.clips[0] - clip
        measured = 10 * np.log10(np.mean(clip ** 2) / np.mean(noise ** 2))
        assert measured == pytest.approx(snr, abs=0.3)
        assert noisy.sample_rate == 16000 and noisy.clips[0].dtype == np.float32


def test_text_word_drop_numeric_noise_and_categorical_swap():
    texts = ["one two three four five six seven eight"] * 50
    assert R.perturb("text", "word_drop", texts, 1.0, rng()) == [""] * 50
    kept = sum(len(t.split()) for t in R.perturb("text", "word_drop", texts, 0.5, rng()))
    assert 150 < kept < 250
    values = np.array([0.0, 1.0, np.nan], dtype=np.float32)
    noisy = R.perturb("numeric", "gaussian_noise", values, 1.0, rng())
    assert np.isnan(noisy[2]) and noisy.dtype == np.float32 and not np.allclose(noisy[:2],
                                                                                values[:2])
    cats = ["x"] * 50 + ["y"] * 50
    swapped = R.perturb("categorical", "swap", cats, 1.0, rng())
    assert set(swapped) <= {"x", "y"} and swapped != cats


def test_relative_robustness_definition():
    assert R.relative_robustness([0, 0.5, 1], [0.8, 0.8, 0.8]) == pytest.approx((0.8, 1.0))
    auc, rel = R.relative_robustness([0, 1], [0.8, 0.0])
    assert auc == pytest.approx(0.4) and rel == pytest.approx(0.5)
    assert R.relative_robustness([0, 1], [0.0, 0.0])[1] is None


@pytest.mark.parametrize("levels", [[0.5, 1.0], [0, 0.5, 0.5], [0, 2], [0], "0,1", [0, True]])
def test_bad_levels_are_a_usage_error(levels):
    with pytest.raises(UsageError, match="noise_levels"):
        R.check_levels(levels)


def test_ablation_and_noise_on_the_pipeline(pipeline):
    from mmcli import artifacts

    fitted = FittedChain.load(pipeline.model)
    items = artifacts.read_jsonl(pipeline.fused / "items.jsonl")
    ablation = R.modality_ablation(fitted, pipeline.feat, items)
    assert list(ablation["removed"]) == fitted.columns
    assert all(0 <= a <= 1 for a in ablation["removed"].values())

    levels = [0.0, 0.5, 1.0]
    noise = R.noise_robustness(fitted, pipeline.pre, levels, seed=0)
    assert noise == R.noise_robustness(fitted, pipeline.pre, levels, seed=0)
    assert sorted(noise) == ["audio/white_noise", "image/blur", "image/gaussian_noise",
                             "text/word_drop", "value/gaussian_noise"]
    for curve in noise.values():
        assert curve["levels"] == levels and len(curve["accuracy"]) == 3 and curve["n"] > 3
        # severity 0 is the clean pipeline, recomputed from the preprocessed data
        assert curve["accuracy"][0] == pytest.approx(ablation["clean"])


def test_noise_curves_do_not_depend_on_workers_or_where_clean_features_come_from(
        pipeline, monkeypatch):
    """The points run on two worker processes and the clean blocks read from the extract
    directory give the same curves as everything computed here."""
    fitted = FittedChain.load(pipeline.model)
    levels = [0.0, 0.5, 1.0]
    here = R.noise_robustness(fitted, pipeline.pre, levels, seed=0, jobs=1)
    assert not R._NOISE  # the points ran here: nothing left behind
    monkeypatch.setattr(R, "PARALLEL_MIN_WORK", 0)
    assert R._noise_jobs(fitted.plan, 2, 10, 1) == 2
    assert R.noise_robustness(fitted, pipeline.pre, levels, seed=0, feat_path=pipeline.feat,
                              jobs=2) == here
    assert not R._NOISE  # no state left behind


def test_noise_curves_carry_a_bootstrap_interval_per_point(pipeline):
    fitted = FittedChain.load(pipeline.model)
    levels = [0.0, 0.5, 1.0]
    plain = R.noise_robustness(fitted, pipeline.pre, levels, seed=0, feat_path=pipeline.feat)
    noise = R.noise_robustness(fitted, pipeline.pre, levels, seed=0, feat_path=pipeline.feat,
                               bootstrap=200)
    # severity 0 is the clean chain: the same interval on every curve
    assert len({str(c["ci"]["accuracy"][0]) for c in noise.values()}) == 1
    for name, curve in noise.items():
        ci = curve.pop("ci")
        assert curve == plain[name]  # the same curve, with intervals
        assert ci["level"] == 0.95 and ci["resamples"] == 200 and len(ci["accuracy"]) == 3
        assert all(lo <= a <= hi for a, (lo, hi) in zip(curve["accuracy"], ci["accuracy"]))


def test_noise_on_a_seeded_subsample(pipeline):
    fitted = FittedChain.load(pipeline.model)
    noise = R.noise_robustness(fitted, pipeline.pre, [0.0, 1.0], seed=0, max_items=3)
    assert {c["n"] for c in noise.values()} == {3}
    assert noise == R.noise_robustness(fitted, pipeline.pre, [0.0, 1.0], seed=0, max_items=3)


def test_ablation_replaces_token_ids_by_padding_and_other_blocks_by_the_train_mean(tmp_path):
    from mmcli.extractors import build_extractor
    from mmcli.fusion import FUSIONS

    (tmp_path / "features").mkdir()
    ids = np.array([[2, 3, 0], [4, 0, 0], [5, 6, 7], [2, 2, 0]], dtype=np.float32)
    values = np.array([[1.0], [3.0], [5.0], [7.0]], dtype=np.float32)
    np.save(tmp_path / "features" / "text.npy", ids)
    np.save(tmp_path / "features" / "value.npy", values)
    items = [{"split": s, "label": "a"} for s in ("train", "train", "test", "test")]
    tokens = build_extractor("tokens", "text", {"max_len": 3}).fit(["w x y z"])
    numeric = build_extractor("numeric", "numeric", {}).fit(values[:, 0])
    fusion = FUSIONS.get("concat")().fit([ids[:2], values[:2]], ["tokens", None])
    seen = []

    class Recorder:
        def predict_proba(self, X):
            seen.append(X.copy())
            return np.ones((len(X), 1))

    fitted = FittedChain(None, None, {"text": [tokens], "value": [numeric]}, fusion,
                         ["text", "value"], Recorder(), ["a"])
    R.modality_ablation(fitted, tmp_path, items)
    clean, no_text, no_value = seen
    np.testing.assert_array_equal(clean[:, :3], ids[2:])  # concat keeps token ids raw
    np.testing.assert_array_equal(no_text[:, :3], 0)  # padding: no text
    np.testing.assert_array_equal(no_text[:, 3:], clean[:, 3:])
    np.testing.assert_allclose(no_value[:, 3:], 0, atol=1e-6)  # the train mean, normalised
    np.testing.assert_array_equal(no_value[:, :3], ids[2:])
