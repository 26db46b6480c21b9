"""Missing modalities are data (issue 14, items 1-3): a row that lacks a modality cell (an
empty cell, a missing file, a corrupt file) is kept, carried with its presence mask through
extract, fuse and the models, predicted, and scored per missingness pattern."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from mmcli.testing.dummies import make_dataset
from tests.cli.helpers import fails, file_hashes, ok, read_rows, write_rows

REPO = Path(__file__).resolve().parents[2]
FAST = ["--model", "logreg"]


def gappy_manifest(root: Path, n: int = 48) -> tuple[Path, dict[str, str]]:
    """A labelled, split manifest (image, audio, text, value) with gaps: an empty text, a
    missing image file, a corrupt audio file, empty image cells, a row with nothing but its
    number, and an unlabelled row. Returns it and {id: the column it lacks}."""
    path = make_dataset(root, n=n, with_split=True)
    rows = read_rows(path)
    (root / "media" / "broken.wav").write_bytes(b"RIFF\x00\x00not a wave file")
    gaps = {"item0004": ("text", ""), "item0005": ("image", "media/nowhere.png"),
            "item0006": ("audio", "media/broken.wav"), "item0007": ("image", ""),
            "item0011": ("text", ""),
            "item0015": ("image", "")}
    for row in rows:
        if row["id"] in gaps:
            col, value = gaps[row["id"]]
            row[col] = value
        if row["id"] == "item0009":  # nothing usable but the number
            row.update(image="", audio="", text="")
        if row["id"] == "item0010":
            row["label"] = ""
    write_rows(path, rows)
    return path, {k: v[0] for k, v in gaps.items()}


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    root = tmp_path_factory.mktemp("gappy")
    manifest, gaps = gappy_manifest(root)
    out = root / "run"
    ok("preprocess", manifest, "-o", out / "pre", "--jobs", 1)
    ok("extract", out / "pre", "-o", out / "feat", "--jobs", 1)
    ok("fuse", out / "feat", "-o", out / "fused")
    ok("train", out / "fused", "-o", out / "model", *FAST)
    cfg = root / "eval.yaml"
    cfg.write_text("eval: {bootstrap: 0, noise_levels: [0, 1]}\n")
    ok("eval", out / "model", out / "fused", "-o", out / "eval", "-c", cfg)
    ok("predict", out / "model", manifest, "-o", out / "pred", "--jobs", 1)
    return root, manifest, gaps, out


def test_preprocess_keeps_rows_with_a_usable_modality(chain):
    root, manifest, gaps, out = chain
    items = {it["id"]: it for it in map(json.loads, (out / "pre" / "items.jsonl").open())}
    for item_id, col in gaps.items():
        assert items[item_id]["missing"] == [col], item_id
    assert items["item0009"]["missing"] == ["image", "audio", "text"]
    assert "item0010" not in items  # no label: left out of training
    assert "missing" not in items["item0000"]
    failures = read_rows(out / "pre" / "failures.csv")
    kept = {(f["id"], f["column"]) for f in failures if f["reason"].startswith("kept: ")}
    assert {(i, c) for i, c in gaps.items()} <= kept
    assert [f["id"] for f in failures if not f["reason"].startswith("kept: ")] == ["item0010"]
    reasons = {(f["id"], f["column"]): f["reason"] for f in failures}
    assert reasons[("item0004", "text")] == "kept: empty text"
    assert "not found" in reasons[("item0005", "image")]


def test_eval_counts_every_labelled_test_row_and_reports_patterns(chain):
    root, manifest, gaps, out = chain
    items = [json.loads(line) for line in (out / "pre" / "items.jsonl").open()]
    test = [it for it in items if it["split"] == "test"]
    metrics = json.loads((out / "eval" / "metrics.json").read_text())
    assert metrics["test"]["n"] == len(test)
    patterns = metrics["test"]["missing"]
    assert patterns[0]["pattern"] == "all present"
    assert sum(p["n"] for p in patterns) == len(test)
    assert {tuple(p["missing"]) for p in patterns} == {
        tuple(it.get("missing", ())) for it in test}
    assert "## Missing modalities (test; real missing cells)" in (
        out / "eval" / "report.md").read_text()
    assert "Missing modalities (test split" in (out / "eval" / "report.html").read_text()


def test_predict_writes_a_row_for_every_row_with_a_usable_modality(chain):
    root, manifest, gaps, out = chain
    rows = read_rows(out / "pred" / "predictions.csv")
    assert len(rows) == len(read_rows(manifest))  # the unlabelled row too: predict needs none
    by_id = {r["id"]: r for r in rows}
    for item_id, col in gaps.items():
        assert by_id[item_id]["missing"] == col
    assert by_id["item0009"]["missing"] == "image|audio|text"
    assert by_id["item0000"]["missing"] == ""


def test_fused_directory_carries_the_mask_and_indicators(chain):
    root, manifest, gaps, out = chain
    fusion = json.loads((out / "fused" / "fusion.json").read_text())
    ind = fusion["missing_indicators"]
    assert ind["columns"] == ["image", "audio", "text", "value"]
    fused = np.load(out / "fused" / "fused.npy")
    items = [json.loads(line) for line in (out / "fused" / "items.jsonl").open()]
    k = next(n for n, it in enumerate(items) if it["id"] == "item0005")
    assert fused[k, ind["start"]:].tolist() == [1.0, 0.0, 0.0, 0.0]
    image = fusion["blocks"][0]
    assert np.allclose(fused[k, image["start"]:image["stop"]], 0.0, atol=1e-5)


def test_min_modalities_and_drop_policy(tmp_path):
    manifest, gaps = gappy_manifest(tmp_path, n=24)
    cfg = tmp_path / "c.yaml"

    def left_out(config: str, out: str) -> dict[str, str]:
        cfg.write_text(f"preprocess: {{max_failed_fraction: 0.5, {config}}}\n")
        ok("preprocess", manifest, "-o", tmp_path / out, "-c", cfg, "--jobs", 1)
        return {f["id"]: f["reason"] for f in read_rows(tmp_path / out / "failures.csv")
                if not f["reason"].startswith("kept: ")}

    two = left_out("min_modalities: 2", "two")
    assert "1 of 4 modalities usable (image, audio, text missing)" in two["item0009"]
    assert "item0005" not in two  # image missing, three usable: kept
    assert left_out("missing: {text: drop}", "drop")["item0004"] == "empty text"
    cfg.write_text("preprocess: {missing: {photo: drop}}\n")
    assert "preprocess.missing names 'photo'" in fails(
        2, "preprocess", manifest, "-o", tmp_path / "p2", "-c", cfg)


def test_late_decision_combines_only_present_modalities():
    from mmcli.models.decision import LateDecisionModel

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 30)
    X = np.hstack([y[:, None] + rng.normal(0, 0.3, (60, 1)), rng.normal(0, 1, (60, 1))])
    model = LateDecisionModel(combine="average")
    present = np.ones((60, 2), dtype=bool)
    present[::3, 1] = False
    model.fit(X.astype(np.float32), y, 2, blocks=[(0, 1), (1, 2)], presence=present)
    only_first = model.models_[0].predict_proba(X[:4, 0:1].astype(np.float32))
    mask = np.array([[True, False]] * 4)
    assert np.allclose(model.predict_proba(X[:4].astype(np.float32), presence=mask), only_first)


def test_gappy_chain_reruns_are_byte_identical(tmp_path):
    """``mmcli run`` of the six stages as a real process, twice in separate folders: every
    file of every stage is byte-identical."""
    manifest, _ = gappy_manifest(tmp_path / "data", n=30)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    pipeline = (f"pipeline: {{manifest: {manifest}, workdir: runs, predict: {manifest}}}\n"
                "preprocess: {jobs: 1}\nextract: {jobs: 1}\npredict: {jobs: 1}\n"
                "train: {model: late_decision}\n"
                "eval: {bootstrap: 20, robustness: false}\n")

    def run_chain(run: str) -> subprocess.CompletedProcess:
        (tmp_path / run).mkdir()
        (tmp_path / run / "pipeline.yaml").write_text(pipeline)
        return subprocess.run([sys.executable, "-m", "mmcli", "run", "pipeline.yaml"],
                              cwd=tmp_path / run, env=env, capture_output=True, text=True,
                              timeout=300)

    with ThreadPoolExecutor(2) as pool:  # independent runs: side by side
        for done in pool.map(run_chain, ("a", "b")):
            assert done.returncode == 0, done.stderr
            assert "Traceback" not in done.stderr
    assert file_hashes(tmp_path / "a") == file_hashes(tmp_path / "b")
    runs = tmp_path / "a" / "runs"
    metrics = json.loads(next(runs.rglob("metrics.json")).read_text())
    assert metrics["test"]["missing"][0]["pattern"] == "all present"
    assert "missing" in read_rows(next(runs.rglob("predictions.csv")))[0]


def test_a_manifest_without_gaps_writes_no_missing_fields(tmp_path):
    """Nothing of the mask appears when no cell is missing: the artifacts stay as before."""
    manifest = make_dataset(tmp_path / "data", n=24, with_split=True)
    out = tmp_path / "run"
    ok("preprocess", manifest, "-o", out / "pre", "--jobs", 1)
    ok("extract", out / "pre", "-o", out / "feat", "--jobs", 1)
    ok("fuse", out / "feat", "-o", out / "fused")
    for stage in ("pre", "feat", "fused"):
        assert '"missing"' not in (out / stage / "items.jsonl").read_text()
    assert "missing_indicators" not in (out / "fused" / "fusion.json").read_text()
    assert "min_modalities" not in (out / "pre" / "state" / "preprocess.json").read_text()


@pytest.mark.parametrize("name", ["gmu", "attention", "lowrank", "late_repr", "tensor_layer"])
def test_learned_fusion_masks_an_absent_block(name):
    """What an absent block holds does not change the prediction; the mask may also come
    from the fusion's missing indicators (model selection passes none)."""
    from mmcli.models import build_model

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 20)
    X = rng.normal(0, 1, (40, 6)).astype(np.float32)
    X[:, 0] += y
    model = build_model(name, {"epochs": 3, "embed": 8, "tensor_dim": 3}, 0, "cpu")
    present = np.ones((40, 2), dtype=bool)
    present[::4, 1] = False
    model.fit(X, y, 2, blocks=[(0, 3), (3, 6)], presence=present)
    mask = np.array([[True, False]] * 5)
    garbage = X[:5].copy()
    garbage[:, 3:] = 100.0
    expected = model.predict_proba(X[:5], presence=mask)
    assert np.allclose(model.predict_proba(garbage, presence=mask), expected, atol=1e-6)
    indicators = np.hstack([garbage, (~mask).astype(np.float32)])
    assert np.allclose(model.predict_proba(indicators), expected, atol=1e-6)
