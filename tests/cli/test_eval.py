"""mmcli eval: metrics, report and per-item predictions of a model on a fuse directory."""

from __future__ import annotations

import json
import shutil

import pytest

from .helpers import fails, ok, read_rows


@pytest.fixture(scope="module")
def evaluated(pipeline, tmp_path_factory):
    """One successful eval of the shared pipeline, with what the user saw."""
    out = tmp_path_factory.mktemp("eval") / "eval"
    return out, ok("eval", pipeline.model, pipeline.fused, "-o", out)


def test_success_writes_metrics_report_and_predictions(evaluated):
    out, _ = evaluated
    metrics = json.loads((out / "metrics.json").read_text())
    assert sorted(metrics) == ["test", "train", "val"]
    assert sum(m["n"] for m in metrics.values()) == 36
    for m in metrics.values():
        for key in ("accuracy", "balanced_accuracy", "macro_f1", "weighted_f1"):
            assert 0.0 <= m[key] <= 1.0
        assert m["confusion_matrix"]["labels"] == ["blue", "green", "red"]
        assert sum(map(sum, m["confusion_matrix"]["matrix"])) == m["n"]
    report = (out / "report.md").read_text()
    assert report.startswith("# mmcli evaluation report")
    assert "## Confusion matrix (test" in report

    rows = read_rows(out / "predictions.csv")
    assert list(rows[0]) == ["id", "split", "label", "prediction",
                             "prob_blue", "prob_green", "prob_red"]
    assert len(rows) == 36
    for row in rows:
        probs = [float(row[f"prob_{c}"]) for c in ("blue", "green", "red")]
        assert sum(probs) == pytest.approx(1.0, abs=1e-5)
    assert json.loads((out / "meta.json").read_text())["stage"] == "eval"


def test_metrics_table_on_stdout_and_messages_on_stderr(evaluated):
    out, result = evaluated
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["split", "n", "accuracy", "balanced_acc", "macro_f1"]
    assert [line.split()[0] for line in lines[1:]] == ["train", "val", "test"]
    assert f"wrote {out} (report: {out / 'report.md'})" in result.stderr
    assert "eval: 36/36 (100%)" in result.stderr


def test_quiet_prints_nothing(pipeline, tmp_path):
    result = ok("eval", pipeline.model, pipeline.fused, "-o", tmp_path / "eval", "-q")
    assert result.output == ""
    assert (tmp_path / "eval" / "metrics.json").is_file()


def test_fuse_directory_of_another_fusion_exits_4(pipeline, tmp_path):
    ok("fuse", pipeline.feat, "-o", tmp_path / "tensor", "--method", "tensor", "-q")
    line = fails(4, "eval", pipeline.model, tmp_path / "tensor", "-o", tmp_path / "eval")
    assert "was not made by the pipeline" in line
    assert str(pipeline.model) in line
    assert not (tmp_path / "eval").exists()


def test_arguments_swapped_exits_4(pipeline, tmp_path):
    line = fails(4, "eval", pipeline.fused, pipeline.model, "-o", tmp_path / "eval")
    assert "'fuse' directory" in line and "needs a 'train' one" in line
    assert f"mmcli train {pipeline.fused} -o DIR" in line


def test_modified_model_exits_4(pipeline, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(pipeline.model, model)
    state = model / "state" / "model" / "model.json"
    state.write_text(state.read_text() + "\n")  # still valid JSON, but not the same bytes
    line = fails(4, "eval", model, pipeline.fused, "-o", tmp_path / "eval")
    assert "model.json was modified" in line


def test_unknown_config_key_exits_2(pipeline, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("eval: {split: [test]}\n")
    line = fails(2, "eval", pipeline.model, pipeline.fused, "-o", tmp_path / "eval",
                 "-c", config)
    assert "did you mean 'splits'?" in line


def test_config_chooses_the_splits(pipeline, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("eval: {splits: [train, val]}\n")
    result = ok("eval", pipeline.model, pipeline.fused, "-o", tmp_path / "eval", "-c", config)
    assert list(json.loads((tmp_path / "eval" / "metrics.json").read_text())) == ["train", "val"]
    assert [line.split()[0] for line in result.stdout.splitlines()[1:]] == ["train", "val"]
    assert "## Per class (val)" in (tmp_path / "eval" / "report.md").read_text()


def test_unknown_split_exits_2(pipeline, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("eval: {splits: [tset]}\n")
    line = fails(2, "eval", pipeline.model, pipeline.fused, "-o", tmp_path / "eval",
                 "-c", config)
    assert "['tset']" in line and "train, val, test" in line
