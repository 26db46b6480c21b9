"""The stages as library functions, on a tiny generated dataset."""

from __future__ import annotations

import csv
import importlib
import json
from pathlib import Path

import numpy as np
import pytest

from mmcli import artifacts
from mmcli.config import ExtractConfig, FuseConfig, PredictConfig, PreprocessConfig, TrainConfig
from mmcli.errors import ArtifactError, DataError, UsageError
from mmcli.stages import evaluate, extract, fuse, predict, preprocess, train
from mmcli.stages.preprocess import read_failures
from mmcli.testing.dummies import make_dataset

N = 36
MODALITIES = ["image", "audio", "text", "value"]


def pre_config(**kw) -> PreprocessConfig:
    return PreprocessConfig(**{"jobs": 1, "image_size": [16, 16], **kw})


def ext_config(**kw) -> ExtractConfig:
    return ExtractConfig(**{"jobs": 1, "params": {"word2vec": {"vector_size": 16, "epochs": 5}},
                            **kw})


def read_csv(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def write_csv(path: Path, rows: list[dict], columns: list[str]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, columns, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def splits_by_id(pre_dir: Path) -> dict[str, str]:
    return {it["id"]: it["split"] for it in artifacts.read_jsonl(pre_dir / "items.jsonl")}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The whole pipeline once: manifest -> pre -> ext -> fused -> model -> eval."""
    root = tmp_path_factory.mktemp("pipeline")
    manifest = make_dataset(root, n=N)
    out = root / "runs"
    summaries = {
        "pre": preprocess(manifest, out / "pre", pre_config()),
        "ext": extract(out / "pre", out / "ext", ext_config()),
        "fused": fuse(out / "ext", out / "fused", FuseConfig()),
        "model": train(out / "fused", out / "model", TrainConfig()),
        "eval": evaluate(out / "model", out / "fused", out / "eval"),
    }
    return {"root": root, "manifest": manifest, "out": out, "summaries": summaries}


# --- outputs ------------------------------------------------------------------------------


def test_preprocess_outputs(run):
    pre = run["out"] / "pre"
    stage = artifacts.open_stage(pre, "preprocess", "test")
    s = run["summaries"]["pre"]
    assert s["rows"] == s["kept"] == N and s["failed"] == 0
    assert s["columns"] == {"image": "image", "audio": "audio", "text": "text",
                            "value": "numeric"}
    assert s["classes"] == ["blue", "green", "red"]
    assert sum(s["splits"].values()) == N and set(s["splits"]) == {"train", "val", "test"}
    assert stage.meta["summary"]["kept"] == N
    items = artifacts.read_jsonl(pre / "items.jsonl")
    assert [it["row"] for it in items] == list(range(1, N + 1))
    assert items[0]["id"] == "item0000" and items[0]["label"] == "red"
    assert set(items[0]["values"]) == {"text"}
    images = np.load(pre / "data" / "image.npy")
    assert images.shape == (N, 16, 16, 3) and images.dtype == np.uint8
    offsets = np.load(pre / "data" / "audio.offsets.npy")
    audio = np.load(pre / "data" / "audio.npy")
    assert offsets.shape == (N + 1,) and offsets[-1] == audio.shape[0]
    assert np.all(np.diff(offsets) == 4000)  # 0.25 s at 8 kHz resampled to 16 kHz
    value = np.load(pre / "data" / "value.npy")
    assert value.shape == (N,) and value.dtype == np.float32
    tr = [k for k, it in enumerate(items) if it["split"] == "train"]
    assert abs(value[tr].mean()) < 1e-5 and value[tr].std() == pytest.approx(1, rel=1e-4)
    assert read_failures(pre / "failures.csv") == []
    state = json.loads((pre / "state" / "preprocess.json").read_text("utf-8"))
    assert state["label"] == "label" and state["image_size"] == [16, 16]


def test_extract_outputs(run):
    ext = run["out"] / "ext"
    artifacts.open_stage(ext, "extract", "test")
    blocks = artifacts.read_json(ext / "blocks.json")
    assert [b["column"] for b in blocks] == list(MODALITIES)  # manifest order
    for b in blocks:
        features = np.load(ext / "features" / f"{b['column']}.npy")
        assert features.shape == (N, b["dim"]) and features.dtype == np.float32
        assert b["dim"] == sum(e["dim"] for e in b["extractors"])
    by_col = {b["column"]: b for b in blocks}
    assert [e["name"] for e in by_col["text"]["extractors"]] == ["tfidf"]
    assert by_col["value"]["dim"] == 1
    assert (ext / "state" / "extract" / "extract.json").is_file()
    assert (ext / "state" / "preprocess.json").is_file()


def test_fuse_train_eval_outputs(run):
    out = run["out"]
    fused = np.load(out / "fused" / "fused.npy")
    assert fused.shape == (N, run["summaries"]["fused"]["dim"])
    assert artifacts.read_json(out / "fused" / "fusion.json")["modalities"] == list(MODALITIES)
    model = run["summaries"]["model"]
    assert model["train_accuracy"] > 0.9
    assert (out / "model" / "state" / "model" / "model.json").is_file()
    artifacts.open_stage(out / "model", "train", "test")
    metrics = run["summaries"]["eval"]
    assert set(metrics) == {"train", "val", "test"}
    assert metrics["test"]["accuracy"] > 0.6
    assert sum(m["n"] for m in metrics.values()) == N
    preds = read_csv(out / "eval" / "predictions.csv")
    assert len(preds) == N
    assert list(preds[0]) == ["id", "split", "label", "prediction", "prob_blue", "prob_green",
                              "prob_red"]
    report = (out / "eval" / "report.md").read_text("utf-8")
    assert "Confusion matrix" in report
    assert json.loads((out / "eval" / "metrics.json").read_text("utf-8")) == metrics


def test_extract_is_reproducible(run, tmp_path):
    extract(run["out"] / "pre", tmp_path / "ext", ext_config())
    same_outputs(run["out"] / "ext", tmp_path / "ext")


def same_outputs(a: Path, b: Path) -> None:
    outputs = artifacts.read_json(a / "meta.json")["outputs"]
    assert outputs == artifacts.read_json(b / "meta.json")["outputs"]
    for rel in outputs:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_output_independent_of_workers_and_chunks(run, tmp_path, monkeypatch):
    """Two worker processes and small chunks give the same bytes as one process."""
    # the package re-exports the stage functions under the modules' names
    monkeypatch.setattr(importlib.import_module("mmcli.stages.preprocess"), "CHUNK", 10)
    monkeypatch.setattr(importlib.import_module("mmcli.stages.extract"), "CHUNK", 10)
    preprocess(run["manifest"], tmp_path / "pre", pre_config(jobs=2))
    same_outputs(run["out"] / "pre", tmp_path / "pre")
    extract(tmp_path / "pre", tmp_path / "ext", ext_config(jobs=2))
    same_outputs(run["out"] / "ext", tmp_path / "ext")


def test_wrong_stage_input(run, tmp_path):
    with pytest.raises(ArtifactError, match="mmcli preprocess MANIFEST"):
        extract(run["out"] / "fused", tmp_path / "x", ext_config())
    assert not (tmp_path / "x").exists()


def test_train_label_mismatch(run, tmp_path):
    with pytest.raises(DataError, match="label"):
        train(run["out"] / "fused", tmp_path / "m", TrainConfig(label="kind"))


def test_fuse_unknown_modality(run, tmp_path):
    with pytest.raises(UsageError, match="'video'"):
        fuse(run["out"] / "ext", tmp_path / "f", FuseConfig(modalities=["video"]))


def test_eval_refuses_other_fusion(run, tmp_path):
    fuse(run["out"] / "ext", tmp_path / "f", FuseConfig(modalities=["text"]))
    with pytest.raises(ArtifactError, match="not made by the pipeline"):
        evaluate(run["out"] / "model", tmp_path / "f", tmp_path / "e")


# --- failures -----------------------------------------------------------------------------


@pytest.fixture
def broken(tmp_path):
    manifest = make_dataset(tmp_path, n=N)
    rows = read_csv(manifest)
    (tmp_path / rows[0]["image"]).unlink()  # missing image
    corrupt = tmp_path / rows[1]["image"]
    corrupt.write_bytes(corrupt.read_bytes()[:40])  # truncated PNG
    return manifest, rows


def test_failures_recorded_and_left_out(broken, tmp_path):
    """With missing: drop (a column that must be present), a bad cell leaves its row out."""
    manifest, rows = broken
    summary = preprocess(manifest, tmp_path / "pre", pre_config(missing={"image": "drop"}))
    assert (summary["rows"], summary["kept"], summary["failed"]) == (N, N - 2, 2)
    failures = read_failures(tmp_path / "pre" / "failures.csv")
    assert [(f["row"], f["id"], f["column"]) for f in failures] == \
        [("1", rows[0]["id"], "image"), ("2", rows[1]["id"], "image")]
    assert "file not found" in failures[0]["reason"]
    assert "cannot decode" in failures[1]["reason"]
    items = artifacts.read_jsonl(tmp_path / "pre" / "items.jsonl")
    assert [it["id"] for it in items] == [r["id"] for r in rows[2:]]
    assert np.load(tmp_path / "pre" / "data" / "image.npy").shape[0] == N - 2
    assert np.load(tmp_path / "pre" / "data" / "value.npy").shape[0] == N - 2
    assert np.load(tmp_path / "pre" / "data" / "audio.offsets.npy").shape[0] == N - 1


def test_bad_cells_are_missing_modalities_of_kept_rows(broken, tmp_path):
    manifest, rows = broken
    summary = preprocess(manifest, tmp_path / "pre", pre_config())
    assert (summary["rows"], summary["kept"], summary["failed"]) == (N, N, 0)
    assert summary["missing_cells"] == {"image": 2}
    failures = read_failures(tmp_path / "pre" / "failures.csv")
    assert [(f["row"], f["column"]) for f in failures] == [("1", "image"), ("2", "image")]
    assert failures[0]["reason"].startswith("kept: file not found")
    items = artifacts.read_jsonl(tmp_path / "pre" / "items.jsonl")
    assert [it.get("missing") for it in items[:3]] == [["image"], ["image"], None]
    image = np.load(tmp_path / "pre" / "data" / "image.npy")
    assert image.shape[0] == N and not image[:2].any()  # absent: a black stand-in


def test_too_many_failures(broken, tmp_path):
    manifest, _ = broken
    out = tmp_path / "runs" / "pre"
    with pytest.raises(DataError) as exc:
        preprocess(manifest, out, pre_config(max_failed_fraction=0.01,
                                             missing={"image": "drop"}))
    assert "2 of 36" in exc.value.message and "row 1" in exc.value.message
    assert not out.exists()
    assert list((tmp_path / "runs").iterdir()) == []  # no temporary directory left


def test_failure_in_other_columns(tmp_path):
    manifest = make_dataset(tmp_path, n=N)
    rows = read_csv(manifest)
    rows[2]["text"] = "   "
    rows[3]["value"] = "inf"
    rows[4]["value"] = "twelve"
    rows[5]["audio"] = "media/none.wav"
    rows[6]["label"] = ""
    rows[7]["value"] = ""  # missing numeric values are kept (NaN)
    write_csv(manifest, rows, list(rows[0]))
    # "twelve" would make detection call the column text: say it is numeric
    summary = preprocess(manifest, tmp_path / "pre",
                         pre_config(columns={"value": "numeric"}, max_failed_fraction=0.2))
    failures = read_failures(tmp_path / "pre" / "failures.csv")
    assert [(f["row"], f["column"]) for f in failures] == \
        [("3", "text"), ("4", "value"), ("5", "value"), ("6", "audio"), ("7", "label")]
    assert [f["reason"].startswith("kept: ") for f in failures] == [True] * 4 + [False]
    assert summary["kept"] == N - 1  # only the unlabelled row is left out
    value = np.load(tmp_path / "pre" / "data" / "value.npy")
    assert np.isnan(value).sum() == 3  # the empty cell and the two unusable ones


def test_numeric_missing_markers(tmp_path):
    manifest = make_dataset(tmp_path, n=N)
    rows = read_csv(manifest)
    rows[3]["value"], rows[4]["value"], rows[5]["value"] = "NA", "null", ""
    write_csv(manifest, rows, list(rows[0]))
    summary = preprocess(manifest, tmp_path / "pre", pre_config())
    assert summary["columns"]["value"] == "numeric"
    assert summary["kept"] == N
    value = np.load(tmp_path / "pre" / "data" / "value.npy")
    assert list(np.flatnonzero(np.isnan(value))) == [3, 4, 5]


# --- no statistic of non-train rows reaches the fit ----------------------------------------


def test_non_train_rows_do_not_reach_the_fit(run, tmp_path):
    pre, ext = run["out"] / "pre", run["out"] / "ext"
    split = splits_by_id(pre)
    rows = read_csv(run["manifest"])
    changed = 0
    for row in rows:
        if split[row["id"]] != "train":
            row["value"] = f"{1e9 + 12345.678 * changed:.3f}"
            row["text"] = row["text"] + " zebra unseen words"
            changed += 1
    assert changed >= 10
    manifest = write_csv(run["root"] / "changed.csv", rows, list(rows[0]))
    preprocess(manifest, tmp_path / "pre", pre_config())
    extract(tmp_path / "pre", tmp_path / "ext", ext_config())
    assert splits_by_id(tmp_path / "pre") == split

    state = json.loads((pre / "state" / "preprocess.json").read_text("utf-8"))
    state2 = json.loads((tmp_path / "pre" / "state" / "preprocess.json").read_text("utf-8"))
    assert state2["numeric"] == state["numeric"]
    assert state2 == state
    files = sorted(p.relative_to(ext / "state") for p in (ext / "state").rglob("*")
                   if p.is_file())
    assert files and files == sorted(p.relative_to(tmp_path / "ext" / "state")
                                     for p in (tmp_path / "ext" / "state").rglob("*")
                                     if p.is_file())
    for rel in files:
        assert (tmp_path / "ext" / "state" / rel).read_bytes() == \
            (ext / "state" / rel).read_bytes(), rel
    # the train rows' features are unchanged too
    tr = [k for k, it in enumerate(artifacts.read_jsonl(pre / "items.jsonl"))
          if it["split"] == "train"]
    for col in MODALITIES:
        a = np.load(ext / "features" / f"{col}.npy")[tr]
        b = np.load(tmp_path / "ext" / "features" / f"{col}.npy")[tr]
        np.testing.assert_array_equal(a, b)
    # ...and the changed non-train values were seen by transform (scaled with train stats)
    value = np.load(tmp_path / "pre" / "data" / "value.npy")
    assert value[[k for k in range(N) if k not in tr]].min() > 1e6
    # downstream, fusion and the (logreg) model are fitted on the same train rows too
    fuse(tmp_path / "ext", tmp_path / "fused", FuseConfig())
    train(tmp_path / "fused", tmp_path / "model", TrainConfig())
    for rel in ("fuse/fuse.json", "fuse/fuse.npz", "model/model.json", "model/model.npz"):
        assert (tmp_path / "model" / "state" / rel).read_bytes() == \
            (run["out"] / "model" / "state" / rel).read_bytes(), rel


# --- predict ------------------------------------------------------------------------------


def test_predict_without_labels_equals_eval(run, tmp_path):
    rows = read_csv(run["manifest"])
    columns = [c for c in rows[0] if c != "label"]
    manifest = write_csv(run["root"] / "unlabelled.csv", rows, columns)
    summary = predict(run["out"] / "model", manifest, tmp_path / "pred", PredictConfig(jobs=1))
    assert (summary["rows"], summary["predicted"], summary["failed"]) == (N, N, 0)
    assert summary["accuracy"] is None
    artifacts.open_stage(tmp_path / "pred", "predict", "test")
    assert sorted(p.name for p in (tmp_path / "pred").iterdir()) == \
        ["failures.csv", "meta.json", "predictions.csv"]
    got = {r["id"]: r for r in read_csv(tmp_path / "pred" / "predictions.csv")}
    want = {r["id"]: r for r in read_csv(run["out"] / "eval" / "predictions.csv")}
    assert list(got) == list(want) == [r["id"] for r in rows]
    for item_id, r in want.items():
        assert got[item_id]["prediction"] == r["prediction"], item_id
        for c in ("prob_blue", "prob_green", "prob_red"):
            assert abs(float(got[item_id][c]) - float(r[c])) <= 2e-6, (item_id, c)


def test_predict_records_failures(run, tmp_path):
    rows = read_csv(run["manifest"])[:6]
    rows[2]["image"] = "media/missing.png"
    rows[4].update(image="", audio="", text="", value="x")  # nothing usable: left out
    manifest = write_csv(run["root"] / "few.csv", rows, list(rows[0]))
    summary = predict(run["out"] / "model", manifest, tmp_path / "pred", PredictConfig(jobs=1))
    assert (summary["rows"], summary["predicted"], summary["failed"]) == (6, 5, 1)
    assert summary["accuracy"]["n"] == 5  # the manifest has labels: predict reports accuracy
    preds = read_csv(tmp_path / "pred" / "predictions.csv")
    assert [p["id"] for p in preds] == [r["id"] for k, r in enumerate(rows) if k != 4]
    assert preds[2]["missing"] == "image"
    failures = read_failures(tmp_path / "pred" / "failures.csv")
    assert [(f["row"], f["id"], f["column"]) for f in failures] == [
        ("3", rows[2]["id"], "image"), ("5", rows[4]["id"], "image")]
    assert "0 of 4 modalities usable" in failures[1]["reason"]


def test_predict_needs_model_columns(run, tmp_path):
    rows = read_csv(run["manifest"])
    manifest = write_csv(run["root"] / "noaudio.csv", rows, ["id", "image", "text", "value"])
    with pytest.raises(DataError, match="'audio'"):
        predict(run["out"] / "model", manifest, tmp_path / "pred", PredictConfig(jobs=1))
    assert not (tmp_path / "pred").exists()


def test_predict_with_subset_of_modalities(run, tmp_path):
    """A model fused from some modalities predicts from a manifest with only those columns."""
    fuse(run["out"] / "ext", tmp_path / "f", FuseConfig(modalities=["text", "value"]))
    train(tmp_path / "f", tmp_path / "m", TrainConfig())
    rows = read_csv(run["manifest"])
    manifest = write_csv(run["root"] / "textonly.csv", rows, ["id", "text", "value"])
    summary = predict(tmp_path / "m", manifest, tmp_path / "p", PredictConfig(jobs=1))
    assert summary["predicted"] == N


def test_extra_regression_metrics_skip_values_that_are_not_numbers():
    """eval reads task values of every split, unchecked by train: 'abc', 'inf' and blanks are
    left out of the task's metrics instead of failing eval (a ValueError before)."""
    from mmcli.fitted import task_metrics

    class TwoTasks:
        tasks_ = [{"name": "label", "kind": "classification", "classes": ["a", "b"]},
                  {"name": "score", "kind": "regression"}]

        def predict_tasks(self, X):
            return {"score": X[:, 0]}

    values = ["1.0", "abc", "", "inf", "3.0"]
    items = [{"split": "test", "labels": {"score": v}} for v in values]
    X = np.array([[1.0], [9.0], [9.0], [9.0], [2.0]])
    metrics = task_metrics(TwoTasks(), items, X, "test")["score"]
    assert metrics["n"] == 2
    assert metrics["mae"] == pytest.approx(0.5)


@pytest.mark.parametrize("config", [{"model": "logreg"},
                                    {"model": "logreg", "search": {"params": {"C": [0.1, 1]},
                                                                   "cv": 2}}])
def test_train_fits_with_one_blas_thread(run, tmp_path, monkeypatch, config):
    """The refit (and train.search) run with one BLAS thread, as the selection workers do:
    a thread pool per small product made the refit 4-10x slower on a busy machine."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from mmcli.models import MODELS

    cls = MODELS.get("logreg")
    seen, real = [], cls.fit

    def fit(self, *args, **kwargs):
        seen.extend(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(cls, "fit", fit)
    with threadpool_limits(2, user_api="blas"):  # what a 2-core machine gives by default
        train(run["out"] / "fused", tmp_path / "model", TrainConfig(**config))
        assert {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"} == {2}
    assert seen and set(seen) == {1}
