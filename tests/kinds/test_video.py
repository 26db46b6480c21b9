"""The video kind: decoding with PyAV (clips generated here, a few 32x32 frames), its limits,
its features (image extractors pooled over frames, audio extractors on the sound track), and
the six-command session on a video manifest."""

from __future__ import annotations

import numpy as np
import pytest
from cli.helpers import fails, file_hashes, ok, read_rows

from mmcli.kinds import detect_kind, get_kind, sniff_media
from mmcli.kinds.video import load_video
from mmcli.media import MediaError
from mmcli.testing.dummies import make_video_dataset, write_video

pytest.importorskip("av")

SPEC = {"image_size": [8, 6], "video_frames": 4, "max_video_seconds": 60.0,
        "long_video": "cut", "max_video_pixels": 64 * 64, "sample_rate": 8000,
        "max_audio_seconds": 30.0}


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".mov", ".avi"])
def test_frames_are_sampled_evenly_and_the_track_is_mono_at_the_rate(tmp_path, suffix):
    clip = write_video(tmp_path / f"c{suffix}", (40, 40, 40), 440.0, frames=8, fps=8)
    frames, track = load_video(clip, SPEC)
    assert frames.shape == (4, 6, 8, 3) and frames.dtype == np.uint8
    brightness = frames.mean(axis=(1, 2, 3))
    assert np.all(np.diff(brightness) > 15)  # frames 0, 2, 4, 6 of 8 (each 10 brighter)
    assert track.dtype == np.float32 and track.ndim == 1
    assert abs(track.size - 8000) <= 1 and 0.2 < np.abs(track).max() < 0.6
    assert sniff_media(clip.read_bytes())[0] == "video"


def test_a_clip_without_sound_has_an_empty_track_and_short_clips_repeat_frames(tmp_path):
    frames, track = load_video(write_video(tmp_path / "c.mp4", freq=None, frames=2), SPEC)
    assert track.size == 0
    assert (frames[0] == frames[1]).all() and (frames[2] == frames[3]).all()
    assert not (frames[1] == frames[2]).all()


def test_limits_on_resolution_and_duration(tmp_path):
    big = write_video(tmp_path / "big.mp4", size=80, frames=1)
    with pytest.raises(MediaError, match=r"video frames too large \(80x80\): more than "
                                         "max_video_pixels = 4096"):
        load_video(big, SPEC)
    long = write_video(tmp_path / "long.mkv", freq=None, frames=8, fps=2)  # 4 s
    with pytest.raises(MediaError, match="longer than max_video_seconds = 2 s"):
        load_video(long, {**SPEC, "max_video_seconds": 2.0, "long_video": "fail"})
    cut, _ = load_video(long, {**SPEC, "max_video_seconds": 2.0})
    whole, _ = load_video(long, SPEC)
    assert cut.mean() < whole.mean()  # the frames of the first 2 s only: the darker ones


def test_detection_and_extractor_lists(tmp_path):
    assert detect_kind(["a.mp4", "b.WEBM", "c.mkv", "d.mov", "e.avi"]) == "video"
    video = get_kind("video")
    assert video.build_extractor("hog", None).name == "hog"
    with pytest.raises(Exception, match="is for text columns, not video"):
        video.build_extractor("tfidf", None)
    with pytest.raises(Exception, match="did you mean 'mfcc'"):
        video.build_extractor("mfc", None)


def test_six_commands_on_a_video_manifest(tmp_path):
    manifest = make_video_dataset(tmp_path / "data", n=12)
    runs = tmp_path / "runs"
    ok("preprocess", manifest, "-o", runs / "pre", "-j", "1")
    ok("extract", runs / "pre", "-o", runs / "feat", "-j", "1", "-c", _config(tmp_path))
    ok("fuse", runs / "feat", "-o", runs / "fused", "--method", "concat")
    ok("train", runs / "fused", "-o", runs / "model", "--model", "logreg")
    ok("eval", runs / "model", runs / "fused", "-o", runs / "eval")
    ok("predict", runs / "model", manifest, "-o", runs / "pred", "-j", "1")
    rows = read_rows(runs / "pred" / "predictions.csv")
    assert len(rows) == 12
    truth = {r["id"]: r["label"] for r in read_rows(manifest)}
    assert sum(r["prediction"] == truth[r["id"]] for r in rows) >= 10
    ok("extract", runs / "pre", "-o", runs / "feat2", "-j", "2", "-c", _config(tmp_path))
    assert (file_hashes(runs / "feat2" / "features")
            == file_hashes(runs / "feat" / "features"))


def test_an_audio_extractor_needs_sound_in_the_train_clips(tmp_path):
    manifest = tmp_path / "m.csv"
    clips = [write_video(tmp_path / f"v{k}.mp4", freq=None, frames=2) for k in range(4)]
    manifest.write_text("clip,label\n" + "".join(f"{c.name},{'ab'[k % 2]}\n"
                                                 for k, c in enumerate(clips)))
    ok("preprocess", manifest, "-o", tmp_path / "pre", "-j", "1")
    config = tmp_path / "c.yaml"
    config.write_text("extract: {video: [color_hist, mfcc]}\n")
    line = fails(3, "extract", tmp_path / "pre", "-o", tmp_path / "feat", "-c", config)
    assert "no train video has a sound track" in line and "mfcc(auto)" in line
    config.write_text("extract: {video: [color_hist, mfcc(auto)]}\n")
    result = ok("extract", tmp_path / "pre", "-o", tmp_path / "feat", "-c", config)
    assert "mfcc(auto) left out: no train video has a sound track" in result.stderr


def _config(tmp_path):
    path = tmp_path / "extract.yaml"
    path.write_text("extract: {video: [color_hist, mfcc(auto)]}\n")
    return path
