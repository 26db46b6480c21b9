"""Incremental and resumable stages: appended rows and changed files are the only work done,
a killed run continues from its last checkpoint, and the result is byte-identical to a full
recompute."""

from __future__ import annotations

import csv
import hashlib
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mmcli.config import PreprocessConfig
from mmcli.stages import preprocess
from mmcli.testing.dummies import make_dataset, write_png


def hashes(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def write_rows(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture
def growing(tmp_path):
    full = make_dataset(tmp_path / "data", n=48)
    with open(full, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return tmp_path, rows


CFG = PreprocessConfig(jobs=1)


def kill_halfway_then_rerun(args: list, prefix: str, total: str, out: Path) -> None:
    """Start ``mmcli ARGS``, SIGKILL it once its progress shows a completed chunk, check that
    nothing passes for an output, run it again and check that it resumed."""
    cmd = [sys.executable, "-m", "mmcli", *map(str, args)]
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    watchdog = threading.Timer(120, proc.kill)
    watchdog.start()
    try:
        while line := proc.stderr.readline():
            if line.startswith(prefix) and total in line:
                break
    finally:
        watchdog.cancel()
    assert "(100%)" not in line
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert not out.exists()
    again = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert again.returncode == 0, again.stderr
    note = [ln for ln in again.stderr.splitlines() if ln.startswith("incremental:")]
    assert note and " 0 chunks resumed" not in note[0], again.stderr


def test_appended_rows_are_the_only_items_decoded(growing):
    tmp, rows = growing
    manifest = write_rows(tmp / "data" / "grow.csv", rows[:30])
    first = preprocess(manifest, tmp / "inc", CFG)
    assert (first["decoded"], first["reused"]) == (30, 0)
    write_rows(manifest, rows)
    second = preprocess(manifest, tmp / "inc", CFG)
    assert (second["decoded"], second["reused"]) == (18, 30)
    full = preprocess(manifest, tmp / "full", CFG)
    assert full["decoded"] == 48
    assert hashes(tmp / "inc") == hashes(tmp / "full")


def test_a_changed_file_is_decoded_again(growing):
    tmp, rows = growing
    manifest = write_rows(tmp / "data" / "m.csv", rows)
    preprocess(manifest, tmp / "out", CFG)
    write_png(tmp / "data" / rows[5]["image"], (1, 2, 3))
    again = preprocess(manifest, tmp / "out", CFG)
    assert (again["decoded"], again["reused"]) == (1, 47)
    assert hashes(tmp / "out") == hashes(Path(_full(manifest, tmp / "full")))


def _full(manifest, out):
    preprocess(manifest, out, CFG)
    return out


def test_other_decode_settings_reuse_nothing(growing):
    tmp, rows = growing
    manifest = write_rows(tmp / "data" / "m.csv", rows)
    preprocess(manifest, tmp / "out", CFG)
    bigger = preprocess(manifest, tmp / "out", PreprocessConfig(jobs=1, image_size=[32, 32]))
    assert (bigger["decoded"], bigger["reused"]) == (48, 0)
    # a setting that does not change decoding (the split) still reuses everything
    split = preprocess(manifest, tmp / "out", PreprocessConfig(
        jobs=1, image_size=[32, 32], split={"train": 0.5, "val": 0.25, "test": 0.25}))
    assert split["reused"] == 48


def test_killed_preprocess_resumes_from_its_last_chunk(tmp_path):
    manifest = make_dataset(tmp_path / "data", n=400)
    out = tmp_path / "runs" / "pre"
    kill_halfway_then_rerun(["preprocess", manifest, "-o", out, "--jobs", "1"],
                            "preprocess: ", "/400", out)
    assert sorted(p.name for p in out.parent.iterdir()) == ["pre"]
    preprocess(manifest, tmp_path / "clean", CFG)
    assert hashes(out) == hashes(tmp_path / "clean")


def test_extract_reuses_fit_and_rows_when_train_is_unchanged(growing):
    from mmcli.config import ExtractConfig
    from mmcli.stages import extract

    tmp, rows = growing
    manifest = write_rows(tmp / "data" / "m.csv", rows)
    preprocess(manifest, tmp / "pre", CFG)
    first = extract(tmp / "pre", tmp / "feat", ExtractConfig(jobs=1))
    assert first["refit"] and first["reused"] == 0
    # unchanged input: everything reused, nothing refitted, output untouched
    again = extract(tmp / "pre", tmp / "feat", ExtractConfig(jobs=1))
    assert not again["refit"] and again["computed"] == 0 and again["reused"] == 48 * 4

    # a val/test item's text changes: only that item's text features are computed again
    k = next(i for i, r in enumerate(rows) if r["id"] == _non_train_id(tmp / "pre"))
    rows[k]["text"] = "completely new words here"
    write_rows(manifest, rows)
    preprocess(manifest, tmp / "pre", CFG)
    third = extract(tmp / "pre", tmp / "feat", ExtractConfig(jobs=1))
    assert not third["refit"] and third["computed"] == 4  # its 4 modality rows
    extract(tmp / "pre", tmp / "full", ExtractConfig(jobs=1))
    assert hashes(tmp / "feat") == hashes(tmp / "full")


def _non_train_id(pre: Path) -> str:
    from mmcli import artifacts

    return next(it["id"] for it in artifacts.read_jsonl(pre / "items.jsonl")
                if it["split"] != "train")


def test_extract_refits_when_train_changes(growing):
    from mmcli.config import ExtractConfig
    from mmcli.stages import extract

    tmp, rows = growing
    manifest = write_rows(tmp / "data" / "m.csv", rows[:40])
    preprocess(manifest, tmp / "pre", CFG)
    extract(tmp / "pre", tmp / "feat", ExtractConfig(jobs=1))
    write_rows(manifest, rows)
    preprocess(manifest, tmp / "pre", CFG)
    again = extract(tmp / "pre", tmp / "feat", ExtractConfig(jobs=1))
    assert again["refit"] and again["reused"] == 0


def test_killed_extract_resumes_and_matches_a_clean_run(tmp_path):
    manifest = make_dataset(tmp_path / "data", n=300)
    pre = tmp_path / "pre"
    preprocess(manifest, pre, CFG)
    out = tmp_path / "runs" / "feat"
    kill_halfway_then_rerun(["extract", pre, "-o", out, "--jobs", "1"], "extract: ", "/1200",
                            out)
    from mmcli.config import ExtractConfig
    from mmcli.stages import extract

    extract(pre, tmp_path / "clean", ExtractConfig(jobs=1))
    assert hashes(out) == hashes(tmp_path / "clean")


def _raise_for(stage: str, monkeypatch) -> None:
    """Make opening a stage directory of ``stage`` fail like a bug (TypeError)."""
    from mmcli import artifacts

    original = artifacts.open_stage

    def broken(path, expected, *args, **kwargs):
        if expected == stage:
            raise TypeError("a bug in the reuse check")
        return original(path, expected, *args, **kwargs)

    monkeypatch.setattr(artifacts, "open_stage", broken)


def test_a_bug_in_the_reuse_checks_propagates_a_corrupt_output_is_recomputed(growing,
                                                                            monkeypatch):
    """The reuse checks caught every exception: a bug became a silent full recompute."""
    from mmcli.config import ExtractConfig
    from mmcli.stages import extract

    tmp, rows = growing
    manifest = write_rows(tmp / "data" / "m.csv", rows[:24])
    preprocess(manifest, tmp / "pre", CFG)
    extract(tmp / "pre", tmp / "feat", ExtractConfig(jobs=1))
    # corrupt (modified after writing): not reusable, computed again, no error
    (tmp / "pre" / "items.jsonl").write_text("{}\n")
    assert preprocess(manifest, tmp / "pre", CFG)["reused"] == 0
    (tmp / "feat" / "state" / "fit.json").write_text("[]")
    assert extract(tmp / "pre", tmp / "feat", ExtractConfig(jobs=1))["refit"]
    # a bug: raised, not hidden
    with monkeypatch.context() as m:
        _raise_for("preprocess", m)
        with pytest.raises(TypeError, match="a bug in the reuse check"):
            preprocess(manifest, tmp / "pre", CFG)
    _raise_for("extract", monkeypatch)
    with pytest.raises(TypeError, match="a bug in the reuse check"):
        extract(tmp / "pre", tmp / "feat", ExtractConfig(jobs=1))


def test_interrupted_extract_resumes_its_chunks_and_its_fit(growing, monkeypatch):
    """A run stopped hard after some chunks (its temporary directory left as a kill leaves
    it) is resumed: the rerun loads the fit the stopped run saved instead of fitting again,
    computes only the chunks the journal lacks, and writes what a clean run writes."""
    import importlib

    from mmcli import artifacts
    from mmcli.config import ExtractConfig

    stage = importlib.import_module("mmcli.stages.extract")
    tmp, rows = growing
    manifest = write_rows(tmp / "data" / "m.csv", rows)
    preprocess(manifest, tmp / "pre", CFG)
    monkeypatch.setattr(stage, "CHUNK", 8)  # 6 chunks per column
    fits, chunks = [], []
    fit_plan, chunk = stage.fit_plan, stage._transform_chunk

    def counted_fit(*args, **kwargs):
        fits.append(1)
        return fit_plan(*args, **kwargs)

    def killed_after_5(task):
        if len(chunks) == 5:
            raise RuntimeError("killed")
        chunks.append(task[:3])
        return chunk(task)

    monkeypatch.setattr(stage, "fit_plan", counted_fit)
    with monkeypatch.context() as m:
        m.setattr(stage, "_transform_chunk", killed_after_5)
        m.setattr(artifacts.StageWriter, "abort", lambda self: None)  # a kill keeps the tmp
        with pytest.raises(RuntimeError, match="killed"):
            stage.extract(tmp / "pre", tmp / "feat", ExtractConfig(jobs=1))
    assert fits == [1] and not (tmp / "feat").exists()
    read = []  # the input's files are not hashed again: the stopped run checked them
    sha256_file = artifacts.sha256_file
    monkeypatch.setattr(artifacts, "sha256_file", lambda p: read.append(p) or sha256_file(p))
    again = stage.extract(tmp / "pre", tmp / "feat", ExtractConfig(jobs=1))
    assert fits == [1] and again["fit_resumed"] and again["resumed_chunks"] == 5
    assert not [p for p in read if "data" in Path(p).parts and "pre" in Path(p).parts]
    stage.extract(tmp / "pre", tmp / "clean", ExtractConfig(jobs=1))
    assert fits == [1, 1]
    assert hashes(tmp / "feat") == hashes(tmp / "clean")
