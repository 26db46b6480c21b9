"""The bad-input corpus (mmcli.testing.badinput) through the CLI: each case's outcome.

One preprocess run over the item corpus (under --media-root, so the escaping paths are refused)
and one run per manifest case. Every case is either a missing modality of a kept row or a row
left out, with its reason in failures.csv, accepted, or a one-line error with its exit code and
no output directory.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from cli.helpers import fails, ok, read_rows

from mmcli.testing import badinput
from mmcli.testing.badinput import ITEM_CASES, MANIFEST_CASES, VIDEO_CASES


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return badinput.write_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def corpus_run(corpus) -> dict:
    """preprocess over the item corpus, confined to its folder; what the user gets."""
    out = corpus / "runs" / "pre"
    result = ok("preprocess", corpus / "items" / "manifest.csv", "-o", out,
                "-c", corpus / "config.yaml", "--media-root", corpus / "items", "-j", "1")
    items = [json.loads(line) for line in
             (out / "items.jsonl").read_text(encoding="utf-8").splitlines()]
    return {"out": out, "stderr": result.stderr,
            "failures": {r["id"]: r for r in read_rows(out / "failures.csv")},
            "items": {it["id"]: (k, it) for k, it in enumerate(items)}}


@pytest.fixture(scope="module")
def video_run(corpus) -> dict:
    """preprocess over the video corpus (written only where PyAV is installed)."""
    videos = corpus / "videos"
    if not videos.is_dir():
        pytest.skip("PyAV is not installed")
    out = corpus / "runs" / "videos"
    ok("preprocess", videos / "manifest.csv", "-o", out, "-c", videos / "config.yaml",
       "-j", "1")
    items = [json.loads(line) for line in
             (out / "items.jsonl").read_text(encoding="utf-8").splitlines()]
    return {"out": out, "failures": {r["id"]: r for r in read_rows(out / "failures.csv")},
            "items": {it["id"]: (k, it) for k, it in enumerate(items)}}


@pytest.mark.parametrize("case", ITEM_CASES + VIDEO_CASES, ids=lambda c: c.name)
def test_item_case(case, request):
    run = request.getfixturevalue("video_run" if case in VIDEO_CASES else "corpus_run")
    failures, items = run["failures"], run["items"]
    if case.outcome in ("missing", "quarantine"):
        assert case.name in failures, f"{case.name} is not in failures.csv"
        failure = failures[case.name]
        assert failure["column"] == case.column
        assert case.expect in failure["reason"], failure["reason"]
        assert "\n" not in failure["reason"]
        if case.outcome == "quarantine":
            assert case.name not in items
        else:  # the row is kept without that modality
            assert failure["reason"].startswith("kept: ")
            assert items[case.name][1]["missing"] == [case.column]
    else:
        assert case.outcome == "accept"
        assert case.name in items, failures.get(case.name)


def test_a_long_clip_is_sampled_in_its_first_max_video_seconds(video_run):
    frames = np.load(video_run["out"] / "data" / "clip.npy")
    sound = np.diff(np.load(video_run["out"] / "data" / "clip.audio.offsets.npy"))
    position = video_run["items"]["video_long"][0]
    # frames at 0, 300 and 600 s, each brighter: the one at 600 s is past the 600 s limit
    assert len({int(f.mean()) for f in frames[position]}) == 2
    assert sound[video_run["items"]["video_silent"][0]] == 0
    assert sound[video_run["items"]["v000"][0]] > 0


def test_the_good_rows_are_all_kept(corpus_run):
    good = [i for i in corpus_run["items"] if i.startswith("good")]
    assert len(good) == 24
    assert not [i for i in corpus_run["failures"] if i.startswith("good")]


def image_of(corpus_run, name: str) -> np.ndarray:
    position = corpus_run["items"][name][0]
    return np.load(corpus_run["out"] / "data" / "image.npy")[position]


def clip_of(corpus_run, name: str) -> np.ndarray:
    position = corpus_run["items"][name][0]
    samples = np.load(corpus_run["out"] / "data" / "audio.npy")
    offsets = np.load(corpus_run["out"] / "data" / "audio.offsets.npy")
    return samples[offsets[position]:offsets[position + 1]]


@pytest.mark.parametrize("name", ["gif_animated", "png_animated"])
def test_animated_images_give_their_first_frame(corpus_run, name):
    image = image_of(corpus_run, name).reshape(-1, 3).astype(int)
    assert np.all(np.abs(image - [255, 0, 0]) <= 2), "not the first (red) frame"


def test_unusual_images_become_rgb(corpus_run):
    cmyk = image_of(corpus_run, "jpeg_cmyk").reshape(-1, 3).astype(int)
    assert np.all(np.abs(cmyk - [200, 40, 40]) <= 15)
    deep = image_of(corpus_run, "png_16bit")[..., 0]
    assert deep.min() <= 10 and deep.max() >= 245  # rescaled to the 8-bit range
    palette = image_of(corpus_run, "png_palette")
    assert (palette[:, :8] == [0, 0, 255]).all()
    assert (palette[:, 8:] == [255, 255, 255]).all()  # the transparent index shows white


def test_long_audio_is_cut_to_the_limit(corpus_run):
    clip = clip_of(corpus_run, "wav_hours")
    assert len(clip) == badinput.MAX_AUDIO_SECONDS * badinput.SAMPLE_RATE


def test_truncated_wav_keeps_the_samples_present(corpus_run):
    assert 0 < len(clip_of(corpus_run, "wav_truncated_body")) < 0.5 * badinput.SAMPLE_RATE


def test_megabyte_text_is_cut_to_the_limit(corpus_run):
    text = corpus_run["items"]["text_megabytes"][1]["values"]["text"]
    assert badinput.MAX_TEXT_CHARS - 1 <= len(text) <= badinput.MAX_TEXT_CHARS


def test_label_only_in_test_is_kept_with_a_note(corpus_run):
    assert corpus_run["items"]["label_only_in_test"][1]["split"] == "test"
    assert "note: label 'purple' (1 item) is not in the train split" in corpus_run["stderr"]
    meta = json.loads((corpus_run["out"] / "meta.json").read_text(encoding="utf-8"))
    assert meta["summary"]["unseen_labels"] == {"purple": 1}
    assert "orange" in meta["summary"]["classes"]  # the single-sample class


def test_without_media_roots_escaping_paths_are_read(corpus, tmp_path):
    ok("preprocess", corpus / "items" / "manifest.csv", "-o", tmp_path / "pre",
       "-c", corpus / "config.yaml", "-j", "1")
    kept = {json.loads(line)["id"] for line in
            (tmp_path / "pre" / "items.jsonl").read_text(encoding="utf-8").splitlines()}
    assert {"escape_dotdot", "escape_absolute", "escape_symlink"} <= kept


def test_worker_processes_give_the_same_result(corpus, corpus_run, tmp_path, monkeypatch):
    # several chunks, so a real pool of worker processes (the module, not the function that
    # mmcli.stages re-exports under the same name)
    monkeypatch.setattr(importlib.import_module("mmcli.stages.preprocess"), "CHUNK", 8)
    out = tmp_path / "pre"
    ok("preprocess", corpus / "items" / "manifest.csv", "-o", out, "-c", corpus / "config.yaml",
       "--media-root", corpus / "items", "-j", "2")
    for name in ("failures.csv", "items.jsonl", "data/image.npy", "data/audio.npy"):
        assert (out / name).read_bytes() == (corpus_run["out"] / name).read_bytes(), name


@pytest.mark.parametrize("case", MANIFEST_CASES, ids=lambda c: c.name)
def test_manifest_case(case, corpus, tmp_path):
    manifest = corpus / "manifests" / case.manifest
    runs = tmp_path / "runs"
    out = runs / "pre"
    if case.outcome == "accept":
        ok("preprocess", manifest, "-o", out, "-j", "1")
        assert len(read_rows(out / "failures.csv")) == 0
        kept = (out / "items.jsonl").read_text(encoding="utf-8").splitlines()
        assert len(kept) == 12
        if case.name == "quoted_newlines":
            assert json.loads(kept[0])["values"]["text"].endswith(", second line; | too")
        return
    line = fails(case.exit_code, "preprocess", manifest, "-o", out, "-j", "1")
    assert case.expect in line, line
    assert str(manifest) in line or case.name == "manifest_missing" or str(manifest) in line
    assert not out.exists()
    leftovers = [p.name for p in runs.iterdir()] if runs.exists() else []
    assert leftovers == [], leftovers  # no partial artifact, no temporary


def test_the_corpus_script_prints_the_table(tmp_path, capsys):
    assert badinput.main([str(tmp_path / "c")]) == 0
    printed = capsys.readouterr().out
    assert printed.count("\n| ") == len(badinput.CASES)
    assert (tmp_path / "c" / "items" / "manifest.csv").is_file()


def test_every_case_is_in_the_readme_and_the_docs():
    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text(encoding="utf-8")
    docs = (root / "docs" / "failures.md").read_text(encoding="utf-8")
    for case in badinput.CASES:
        assert case.what in readme, f"README lacks the case {case.what!r}"
        assert case.what in docs, f"docs/failures.md lacks the case {case.what!r}"
    # the tables are the corpus's own, verbatim (regenerate: badinput.table())
    assert badinput.table() in readme
    assert badinput.table() in docs


if sys.platform == "win32":  # pragma: no cover - fifos and symlinks
    pytestmark = pytest.mark.skip("POSIX only")


def test_the_rest_of_the_chain_runs_on_what_the_corpus_kept(corpus, corpus_run, tmp_path):
    """Accepted oddities (CMYK, 16-bit, animated, cut audio and text, an unseen label, a
    single-sample class) flow through extract, fuse, train, eval and predict."""
    runs = tmp_path / "runs"
    ok("extract", corpus_run["out"], "-o", runs / "feat", "-j", "1")
    ok("fuse", runs / "feat", "-o", runs / "fused")
    ok("train", runs / "fused", "-o", runs / "model")
    ok("eval", runs / "model", runs / "fused", "-o", runs / "eval", "--no-robustness")
    rows = {r["id"]: r for r in read_rows(runs / "eval" / "predictions.csv")}
    assert rows["label_only_in_test"]["label"] == "purple"
    assert rows["label_only_in_test"]["prediction"] != "purple"  # it cannot be predicted

    ok("predict", runs / "model", corpus / "items" / "manifest.csv", "-o", runs / "pred",
       "--media-root", corpus / "items", "-j", "1")
    left_out = {r["id"] for r in read_rows(runs / "pred" / "failures.csv")}
    # the same items as preprocess, except the one without a label: predict needs none
    assert left_out == set(corpus_run["failures"]) - {"label_missing"}
