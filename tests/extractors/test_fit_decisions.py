"""Conditional extractors (``frames(auto)``): decided once at fit from the train data, recorded in
blocks.json and the fitted state, and kept by incremental runs, fuse and predict."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from mmcli.config import ExtractConfig, FuseConfig, PreprocessConfig
from mmcli.dataset import AudioClips
from mmcli.errors import UsageError
from mmcli.extractors import build_extractor
from mmcli.stages import extract, fuse, preprocess
from mmcli.stages.extract import fit_plan, load_decisions, load_plan
from mmcli.testing.dummies import write_wav


def write_speech_set(root: Path, seconds) -> Path:
    """Tones of two pitches (the label), one clip length per row; 8 kHz, tiny."""
    rows = []
    rng = np.random.default_rng(0)
    for k, secs in enumerate(seconds):
        label = "ab"[k % 2]
        write_wav(root / "media" / f"c{k}.wav", (200.0, 320.0)[k % 2], seconds=secs,
                  rng=rng)
        rows.append({"id": f"c{k}", "speech": f"media/c{k}.wav", "label": label,
                     "split": ("train", "train", "train", "test")[k % 4] if k >= 4 else "train"})
    with open(root / "manifest.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return root / "manifest.csv"


def blocks_of(feat: Path) -> dict:
    return {b["column"]: b for b in json.loads((feat / "blocks.json").read_text())}


@pytest.mark.parametrize("seconds, added", [([0.5] * 10, True),
                                            ([2.5, 3.0, 4.0, 4.5, 3.5] * 2, False)])
def test_default_audio_adds_frames_only_for_short_equal_clips(tmp_path, seconds, added):
    manifest = write_speech_set(tmp_path / "data", seconds)
    preprocess(manifest, tmp_path / "pre", PreprocessConfig(jobs=1, sample_rate=8000))
    summary = extract(tmp_path / "pre", tmp_path / "feat", ExtractConfig(jobs=1))

    block = blocks_of(tmp_path / "feat")["speech"]
    names = [e["name"] for e in block["extractors"]]
    assert names == ["mfcc", "spectral", "prosody"] + (["frames"] if added else [])
    assert [(d["name"], d["applied"]) for d in block["decisions"]] == [("frames", added)]
    x = np.load(tmp_path / "feat" / "features" / "speech.npy")
    assert x.shape[1] == block["dim"] == sum(e["dim"] for e in block["extractors"])
    state = tmp_path / "feat" / "state" / "extract"
    assert [e.name for e in load_plan(state)["speech"]] == names
    assert load_decisions(state)["speech"] == block["decisions"]
    note = summary["notes"]["speech"][0]
    assert note.startswith("frames(auto) added" if added else "frames(auto) left out")

    # an incremental run (same train items and config) keeps the fitted state and decision
    again = extract(tmp_path / "pre", tmp_path / "feat", ExtractConfig(jobs=1))
    assert not again["refit"] and blocks_of(tmp_path / "feat")["speech"] == block
    # fuse carries the decision into the state that predict loads; a mixed block is a plain
    # vector (no structure for the encoders)
    fuse(tmp_path / "feat", tmp_path / "fused", FuseConfig())
    carried = tmp_path / "fused" / "state" / "extract"
    assert load_decisions(carried) == load_decisions(state)
    assert [e.name for e in load_plan(carried)["speech"]] == names
    fusion = json.loads((tmp_path / "fused" / "fusion.json").read_text())
    assert "layout" not in fusion["blocks"][0]


def test_frames_named_plainly_is_always_used(tmp_path):
    manifest = write_speech_set(tmp_path / "data", [2.5, 3.0, 4.0, 4.5] * 2)
    preprocess(manifest, tmp_path / "pre", PreprocessConfig(jobs=1, sample_rate=8000))
    extract(tmp_path / "pre", tmp_path / "feat", ExtractConfig(jobs=1, audio=["frames"]))
    block = blocks_of(tmp_path / "feat")["speech"]
    assert [e["name"] for e in block["extractors"]] == ["frames"] and "decisions" not in block
    assert block["extractors"][0]["structure"]["layout"] == "logmel"


def test_fit_plan_reads_train_data_once_and_refuses_an_empty_column():
    long = AudioClips([np.zeros(8000 * 5, np.float32)] * 3, 8000)
    reads = []

    def column(col):
        reads.append(col)
        return long

    plan = {"a": [build_extractor("mfcc", "audio", {}),
                  build_extractor("frames(auto)", "audio", {})]}
    fitted, decisions = fit_plan(plan, {"a": {1}}, column)
    assert [e.name for e in fitted["a"]] == ["mfcc"] and reads == ["a"]
    assert decisions["a"][0]["applied"] is False
    only = {"a": [build_extractor("frames", "audio", {})]}
    with pytest.raises(UsageError, match="no extractor of column 'a' applies"):
        fit_plan(only, {"a": {0}}, column)
