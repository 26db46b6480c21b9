"""mmcli train: a self-contained model directory from a fuse directory."""

from __future__ import annotations

import json

from .helpers import fails, ok, read_rows, write_rows


def test_success_logreg(pipeline, tmp_path):
    out = tmp_path / "model"
    result = ok("train", pipeline.fused, "-o", out)
    for rel in ("meta.json", "train_log.jsonl", "state/model/model.json",
                "state/preprocess.json", "state/extract/extract.json", "state/fuse/fuse.json"):
        assert (out / rel).is_file(), rel
    meta = json.loads((out / "meta.json").read_text())
    assert meta["stage"] == "train"
    assert meta["config"]["model"] == "logreg"
    assert meta["summary"]["classes"] == ["blue", "green", "red"]
    assert meta["summary"]["train_accuracy"] > 0.9  # the dummy classes are easy
    n_train = meta["summary"]["n_train"]
    assert f"train: logreg on {n_train} items; train accuracy " in result.stderr
    assert "train logreg: 1/1 (100%)" in result.stderr
    assert f"wrote {out}" in result.stderr


def test_mlp_from_config(pipeline, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("train: {model: mlp, params: {hidden: [8], epochs: 3}}\n")
    out = tmp_path / "model"
    result = ok("train", pipeline.fused, "-o", out, "-c", config, "--device", "cpu")
    assert "train: mlp on" in result.stderr
    log = (out / "train_log.jsonl").read_text().splitlines()
    assert 1 <= len(log) <= 3
    meta = json.loads((out / "meta.json").read_text())
    assert meta["config"]["params"] == {"hidden": [8], "epochs": 3}
    assert meta["config"]["device"] == "cpu"


def test_quiet_prints_nothing(pipeline, tmp_path):
    assert ok("train", pipeline.fused, "-o", tmp_path / "model", "-q").output == ""


def test_unknown_model_exits_2(pipeline, tmp_path):
    line = fails(2, "train", pipeline.fused, "-o", tmp_path / "model", "--model", "lgreg")
    assert "unknown model 'lgreg'" in line
    assert "did you mean 'logreg'?" in line
    line = fails(2, "train", pipeline.fused, "-o", tmp_path / "model", "--model", "xgboost")
    assert "logreg, mlp" in line
    assert not (tmp_path / "model").exists()


def test_bad_device_exits_2(pipeline, tmp_path):
    line = fails(2, "train", pipeline.fused, "-o", tmp_path / "model", "--device", "tpu")
    assert "'tpu'" in line and "auto, cpu or cuda" in line


def test_bad_model_parameters_exit_2(pipeline, tmp_path):
    config = tmp_path / "config.yaml"
    for params, fragment in [
        ("{model: logreg, params: {c: 2}}", "unknown parameter 'c' for model 'logreg'"),
        ("{model: logreg, params: {penalty: l3}}", "'l3'"),
        ("{model: mlp, params: {epochs: many}}", "'epochs' parameter of model 'mlp'"),
    ]:
        config.write_text(f"train: {params}\n")
        line = fails(2, "train", pipeline.fused, "-o", tmp_path / "model", "-c", config)
        assert fragment in line
    assert not (tmp_path / "model").exists()


def test_wrong_kind_of_directory_exits_4(pipeline, tmp_path):
    line = fails(4, "train", pipeline.feat, "-o", tmp_path / "model")
    assert "'extract' directory" in line and "needs a 'fuse'" in line
    assert f"mmcli fuse {pipeline.feat} -o DIR" in line


def test_label_different_from_preprocess_exits_3(pipeline, tmp_path):
    line = fails(3, "train", pipeline.fused, "-o", tmp_path / "model", "--label", "kind")
    assert "--label 'kind' differs from the label column 'label'" in line


def test_custom_label_needs_to_be_given_to_preprocess_only(dataset, tmp_path):
    rows = [{("target" if k == "label" else k): v for k, v in r.items()}
            for r in read_rows(dataset)]
    manifest = write_rows(dataset.parent / "target.csv", rows)
    runs = tmp_path / "runs"
    ok("preprocess", manifest, "-o", runs / "pre", "--label", "target", "-j", "1", "-q")
    ok("extract", runs / "pre", "-o", runs / "feat", "-j", "1", "-q")
    ok("fuse", runs / "feat", "-o", runs / "fused", "-q")
    ok("train", runs / "fused", "-o", runs / "model", "-q")
    ok("train", runs / "fused", "-o", runs / "model", "--label", "target", "-q")
    meta = json.loads((runs / "model" / "meta.json").read_text())
    assert meta["summary"]["classes"] == ["blue", "green", "red"]
    ok("eval", runs / "model", runs / "fused", "-o", runs / "eval", "-q")
    assert json.loads((runs / "eval" / "metrics.json").read_text())["test"]["n"] > 0
