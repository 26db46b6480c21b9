"""mmcli predict: a trained model directory applied to a new manifest."""

from __future__ import annotations

import json
import shutil

import pytest

from mmcli.testing.dummies import make_dataset

from .helpers import fails, ok, read_rows, write_rows

CLASSES = ["blue", "green", "red"]


@pytest.fixture
def unlabeled(tmp_path):
    """12 new rows without a label column, ids new0000..new0011."""
    return make_dataset(tmp_path / "new", n=12, seed=1, with_label=False, id_prefix="new")


def check_predictions(path, ids, extra=()):
    rows = read_rows(path)
    assert list(rows[0]) == ["id", "prediction", *(f"prob_{c}" for c in CLASSES), *extra]
    assert [r["id"] for r in rows] == ids
    for row in rows:
        probs = {c: float(row[f"prob_{c}"]) for c in CLASSES}
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-5)
        assert row["prediction"] == max(probs, key=probs.get)
    return rows


def test_success(pipeline, unlabeled, tmp_path):
    out = tmp_path / "pred"
    result = ok("predict", pipeline.model, unlabeled, "-o", out, "-j", "1")
    rows = check_predictions(out / "predictions.csv", [f"new{k:04d}" for k in range(12)])
    # the dummy classes cycle red, green, blue and are easy to tell apart
    truth = [CLASSES[::-1][k % 3] for k in range(12)]
    assert sum(r["prediction"] == t for r, t in zip(rows, truth)) >= 10
    assert read_rows(out / "failures.csv") == []
    assert sorted(p.name for p in out.iterdir()) == ["failures.csv", "meta.json",
                                                     "predictions.csv"]
    assert json.loads((out / "meta.json").read_text())["stage"] == "predict"
    assert "predict: 12 of 12 items predicted, 0 left out" in result.stderr
    assert "accuracy" not in result.stderr  # no label column, no accuracy
    assert f"wrote {out / 'predictions.csv'}" in result.stderr
    assert "preprocess: 12/12 (100%)" in result.stderr


def test_accuracy_is_reported_when_labels_are_present(pipeline, tmp_path):
    manifest = make_dataset(tmp_path / "new", n=12, seed=1, id_prefix="new")
    result = ok("predict", pipeline.model, manifest, "-o", tmp_path / "pred", "-j", "1")
    assert "accuracy on the 12 rows with a 'label' value: " in result.stderr


def test_quiet_prints_nothing(pipeline, unlabeled, tmp_path):
    result = ok("predict", pipeline.model, unlabeled, "-o", tmp_path / "pred", "-j", "1", "-q")
    assert result.output == ""


def test_jsonl_manifest(pipeline, tmp_path):
    manifest = make_dataset(tmp_path / "new", n=6, with_label=False, fmt="jsonl")
    ok("predict", pipeline.model, manifest, "-o", tmp_path / "pred", "-j", "1", "-q")
    check_predictions(tmp_path / "pred" / "predictions.csv", [f"item{k:04d}" for k in range(6)])


def test_rows_with_a_missing_modality_are_predicted_and_listed(pipeline, unlabeled, tmp_path):
    rows = read_rows(unlabeled)
    (unlabeled.parent / "media" / "broken.png").write_bytes(b"\x89PNG but not really")
    rows[1]["image"] = "media/broken.png"
    rows[4]["audio"] = "media/gone.wav"
    rows[7]["text"] = "   "
    write_rows(unlabeled, rows)
    out = tmp_path / "pred"
    result = ok("predict", pipeline.model, unlabeled, "-o", out, "-j", "1")
    assert "predict: 12 of 12 items predicted, 0 left out" in result.stderr
    assert "missing modalities in kept items: audio 1, image 1, text 1" in result.stderr
    check_predictions(out / "predictions.csv", [f"new{k:04d}" for k in range(12)], ["missing"])
    assert [r["missing"] for r in read_rows(out / "predictions.csv")][:8] == [
        "", "image", "", "", "audio", "", "", "text"]
    failures = read_rows(out / "failures.csv")
    assert [(f["row"], f["id"], f["column"]) for f in failures] == [
        ("2", "new0001", "image"), ("5", "new0004", "audio"), ("8", "new0007", "text")]
    assert all(f["reason"].startswith("kept: ") for f in failures)


def test_manifest_missing_a_modality_column_exits_3(pipeline, unlabeled, tmp_path):
    rows = read_rows(unlabeled)
    for row in rows:
        del row["audio"]
    write_rows(unlabeled, rows)
    line = fails(3, "predict", pipeline.model, unlabeled, "-o", tmp_path / "pred")
    assert "lacks column 'audio'" in line
    assert "which the model was trained with" in line
    assert not (tmp_path / "pred").exists()


def test_model_of_some_modalities_needs_only_those_columns(pipeline, unlabeled, tmp_path):
    ok("fuse", pipeline.feat, "-o", tmp_path / "fused", "--modalities", "image,value", "-q")
    ok("train", tmp_path / "fused", "-o", tmp_path / "model", "-q")
    rows = [{"id": r["id"], "image": r["image"], "value": r["value"]}
            for r in read_rows(unlabeled)]
    manifest = write_rows(unlabeled.parent / "two.csv", rows)
    ok("predict", tmp_path / "model", manifest, "-o", tmp_path / "pred", "-j", "1", "-q")
    check_predictions(tmp_path / "pred" / "predictions.csv", [r["id"] for r in rows])


def test_missing_manifest_exits_3(pipeline, tmp_path):
    line = fails(3, "predict", pipeline.model, tmp_path / "new.csv", "-o", tmp_path / "pred")
    assert "new.csv does not exist" in line


def test_duplicate_ids_exit_3(pipeline, unlabeled, tmp_path):
    rows = read_rows(unlabeled)
    write_rows(unlabeled, [*rows, rows[0]])
    line = fails(3, "predict", pipeline.model, unlabeled, "-o", tmp_path / "pred")
    assert "duplicate id 'new0000' in rows 1 and 13" in line


def test_not_a_model_directory_exits_4(pipeline, unlabeled, tmp_path):
    line = fails(4, "predict", pipeline.fused, unlabeled, "-o", tmp_path / "pred")
    assert "'fuse' directory" in line and "needs a 'train' one" in line
    assert f"mmcli train {pipeline.fused} -o DIR" in line


def test_modified_model_exits_4(pipeline, unlabeled, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(pipeline.model, model)
    with open(model / "state" / "fuse" / "fuse.npz", "ab") as f:
        f.write(b"\0")
    line = fails(4, "predict", model, unlabeled, "-o", tmp_path / "pred")
    assert "fuse.npz was modified" in line


def test_unknown_config_key_exits_2(pipeline, unlabeled, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("predict: {max_failed_fractoin: 0.5}\n")
    line = fails(2, "predict", pipeline.model, unlabeled, "-o", tmp_path / "pred", "-c", config)
    assert "did you mean 'max_failed_fraction'?" in line


def test_too_many_failures_with_a_limit_exit_3(pipeline, unlabeled, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("predict: {max_failed_fraction: 0.1}\n")
    rows = read_rows(unlabeled)
    for row in rows[:3]:  # no usable modality: left out
        row.update(image="media/gone.png", audio="", text="", value="x")
    write_rows(unlabeled, rows)
    line = fails(3, "predict", pipeline.model, unlabeled, "-o", tmp_path / "pred", "-j", "1",
                 "-c", config)
    assert "3 of 12 items" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml", "new"]
