"""mmcli train: a self-contained model directory from a fuse directory."""

from __future__ import annotations

import json

import pytest

from .helpers import fails, ok, read_rows, write_rows


def test_success_default_model(pipeline, tmp_path):
    out = tmp_path / "model"
    result = ok("train", pipeline.fused, "-o", out)
    for rel in ("meta.json", "train_log.jsonl", "state/model/model.json",
                "state/preprocess.json", "state/extract/extract.json", "state/fuse/fuse.json"):
        assert (out / rel).is_file(), rel
    meta = json.loads((out / "meta.json").read_text())
    assert meta["stage"] == "train"
    assert meta["config"]["model"] == "auto"
    # auto: the leaderboard's chosen row is the model trained
    rows = read_rows(out / "leaderboard.csv")
    chosen = [r for r in rows if r["chosen"] == "yes"]
    assert len(chosen) == 1 and chosen[0]["rank"] == "1"
    name = meta["summary"]["model"]
    assert name in ("subset", chosen[0]["model"])
    assert [(str(r["rank"]), r["model"], r["chosen"]) for r in
            meta["summary"]["selection"]["leaderboard"]] == [
        (r["rank"], r["model"], r["chosen"]) for r in rows]
    assert meta["summary"]["classes"] == ["blue", "green", "red"]
    assert meta["summary"]["train_accuracy"] > 0.9  # the dummy classes are easy
    n_train = meta["summary"]["n_train"]
    assert f"train: {name} on {n_train} items; train accuracy " in result.stderr
    assert "model selection (3-fold cv, macro-F1;" in result.stdout
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
    assert "linear_svm, logreg, lowrank, mlp" in line
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


def test_learned_fusion_model_with_epoch_progress(pipeline, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("train: {model: gmu, params: {embed: 8, head: [8], epochs: 5, "
                      "modality_dropout: 0.2, schedule: cosine}}\n")
    out = tmp_path / "model"
    result = ok("train", pipeline.fused, "-o", out, "-c", config, "--device", "cpu")
    assert "train gmu: 5/5 (100%)" in result.stderr
    meta = json.loads((out / "meta.json").read_text())
    assert meta["summary"]["epochs_run"] == len((out / "train_log.jsonl").read_text().splitlines())
    state = json.loads((out / "state" / "model" / "model.json").read_text())
    fusion = json.loads((pipeline.fused / "fusion.json").read_text())
    assert [(b["start"], b["stop"]) for b in fusion["blocks"]] == \
        [tuple(b) for b in state["fitted"]["blocks"]]
    assert [b["column"] for b in fusion["blocks"]] == fusion["modalities"]
    ok("eval", out, pipeline.fused, "-o", tmp_path / "eval", "-q")


def test_learned_fusion_refuses_other_fusions(pipeline, tmp_path):
    ok("fuse", pipeline.feat, "-o", tmp_path / "sum", "--method", "sum", "-q")
    assert "blocks" not in json.loads((tmp_path / "sum" / "fusion.json").read_text())
    line = fails(2, "train", tmp_path / "sum", "-o", tmp_path / "model", "--model", "attention")
    assert "'sum'" in line and "mmcli fuse --method concat" in line
    ok("train", tmp_path / "sum", "-o", tmp_path / "model", "--model", "random_forest", "-q")
    ok("train", tmp_path / "sum", "-o", tmp_path / "auto", "-q")  # auto: no block models
    meta = json.loads((tmp_path / "auto" / "meta.json").read_text())
    assert meta["summary"]["model"] in ("logreg", "linear_svm", "hist_gb", "mlp")
    notes = {r["model"]: r["note"] for r in read_rows(tmp_path / "auto" / "leaderboard.csv")}
    assert notes["late_decision"].startswith("skipped: needs a concat fuse directory")


def test_search_from_config(pipeline, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("train: {model: linear_svm, search: {method: grid, cv: 2, "
                      "params: {C: [0.01, 1.0]}}}\n")
    result = ok("train", pipeline.fused, "-o", tmp_path / "model", "-c", config)
    assert "search: best {'C': " in result.stderr
    summary = json.loads((tmp_path / "model" / "meta.json").read_text())["summary"]
    assert summary["search"]["best_params"]["C"] in (0.01, 1.0)
    assert len(summary["search"]["results"]) == 2
    config.write_text("train: {model: logreg, search: {method: grid, params: {C: 1}}}\n")
    assert "non-empty lists" in fails(2, "train", pipeline.fused, "-o", tmp_path / "m2",
                                      "-c", config)


def test_tasks_trained_together(dataset, tmp_path):
    rows = read_rows(dataset)
    for k, r in enumerate(rows):
        r["size"] = "big" if k % 2 else "small"
        r["score"] = f"{float(r['value']) * 2:.3f}" if k % 5 else ""
    manifest = write_rows(dataset.parent / "tasks.csv", rows)
    config = tmp_path / "config.yaml"
    config.write_text(
        "preprocess: {tasks: [size, score], jobs: 1}\nextract: {jobs: 1}\n"
        "train: {model: mlp, params: {hidden: [16], epochs: 30, lr: 0.01}, "
        "tasks: {size: {}, score: {kind: regression, weight: 0.5}}}\n")
    runs = tmp_path / "runs"
    ok("preprocess", manifest, "-o", runs / "pre", "-c", config, "-q")
    cols = json.loads((runs / "pre" / "state" / "preprocess.json").read_text())["columns"]
    assert "size" not in cols and "score" not in cols
    ok("extract", runs / "pre", "-o", runs / "feat", "-c", config, "-q")
    ok("fuse", runs / "feat", "-o", runs / "fused", "-q")
    item = json.loads((runs / "fused" / "items.jsonl").read_text().splitlines()[1])
    assert set(item["labels"]) == {"size", "score"}
    result = ok("train", runs / "fused", "-o", runs / "model", "-c", config, "--device", "cpu")
    assert "task size: train_accuracy" in result.stderr
    tasks = json.loads((runs / "model" / "meta.json").read_text())["summary"]["tasks"]
    assert set(tasks) == {"label", "size", "score"}
    assert tasks["label"]["train_accuracy"] > 0.9
    assert tasks["score"]["train_rmse"] is not None
    ok("eval", runs / "model", runs / "fused", "-o", runs / "eval", "-q")
    metrics = json.loads((runs / "eval" / "metrics.json").read_text())
    assert set(metrics["train"]["tasks"]) == {"size", "score"}
    assert metrics["train"]["tasks"]["size"]["accuracy"] is not None
    assert metrics["test"]["tasks"]["score"]["n"] < metrics["test"]["n"]  # blanks left out
    assert "rmse" in metrics["test"]["tasks"]["score"]
    assert {"mae", "r2"} <= set(metrics["test"]["tasks"]["score"])
    assert set(metrics["test"]["tasks"]["size"]["per_class"]) == {"big", "small"}
    assert "balanced_accuracy" in metrics["test"]["tasks"]["size"]
    report = (runs / "eval" / "report.md").read_text()
    assert "## Extra task `size`" in report and "## Extra task `score`" in report
    assert "| split | n | MAE | RMSE | R2 |" in report
    size_test = metrics["test"]["tasks"]["size"]
    assert f"| test | {size_test['n']} | {size_test['accuracy']:.3f} |" in report
    html = (runs / "eval" / "report.html").read_text()
    assert "<h3>Extra tasks</h3>" in html and "<h4>score</h4>" in html
    rows = read_rows(runs / "eval" / "predictions.csv")
    assert {r["prediction_size"] for r in rows} <= {"big", "small"}
    float(rows[0]["prediction_score"])
    ok("predict", runs / "model", manifest, "-o", runs / "pred", "-j", "1", "-q")
    predicted = read_rows(runs / "pred" / "predictions.csv")
    assert list(predicted[0])[-2:] == ["prediction_size", "prediction_score"]
    assert [r["prediction_size"] for r in predicted] == [r["prediction_size"] for r in rows]
    config.write_text("train: {model: logreg, tasks: {size: {}}}\n")
    line = fails(2, "train", runs / "fused", "-o", runs / "m2", "-c", config)
    assert "train.tasks needs a torch model" in line


def test_tasks_need_preprocess_to_keep_them(pipeline, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("train: {model: mlp, tasks: {size: {}}}\n")
    line = fails(3, "train", pipeline.fused, "-o", tmp_path / "model", "-c", config)
    assert "task column 'size'" in line and "tasks: [size]" in line


def test_auto_scores_on_a_val_split_that_the_manifest_gave(tmp_path):
    """A split column of the user's (held-out speakers, a later session) is what must
    generalise: selection scores on its val rows instead of cross-validating inside train."""
    from mmcli.testing.dummies import make_dataset

    manifest = make_dataset(tmp_path / "data", n=45, with_split=True)
    runs = tmp_path / "runs"
    ok("preprocess", manifest, "-o", runs / "pre", "-j", "1", "-q")
    ok("extract", runs / "pre", "-o", runs / "feat", "-j", "1", "-q")
    ok("fuse", runs / "feat", "-o", runs / "fused", "-q")
    config = tmp_path / "c.yaml"
    config.write_text("train: {select: {candidates: [logreg], jobs: 1}}\n")
    result = ok("train", runs / "fused", "-o", runs / "model", "-c", config)
    assert "model selection (val split, macro-F1;" in result.stdout
    config.write_text("train: {select: {candidates: [logreg], jobs: 1, validation: cv}}\n")
    result = ok("train", runs / "fused", "-o", runs / "model2", "-c", config)
    assert "model selection (3-fold cv, macro-F1;" in result.stdout


@pytest.mark.parametrize("validation", ["cv", "val"])
def test_selection_never_sees_test_rows(pipeline, tmp_path, monkeypatch, validation):
    """Whatever the validation, the rows model selection fits and scores are train rows (and
    val rows, only as scored rows, with validation: val): never a test row."""
    import numpy as np

    from mmcli import artifacts
    from mmcli.config import TrainConfig
    from mmcli.models import select as select_module
    from mmcli.stages.train import train

    seen = {}
    real = select_module.select_model

    def spy(problem, *args, **kwargs):
        seen["problem"] = problem
        return real(problem, *args, **kwargs)

    monkeypatch.setattr(select_module, "select_model", spy)
    train(pipeline.fused, tmp_path / "m", TrainConfig(
        select={"candidates": ["logreg"], "jobs": 1, "validation": validation,
                "drop_blocks": False}))
    items = artifacts.read_jsonl(pipeline.fused / "items.jsonl")
    X = np.asarray(artifacts.load_npy(pipeline.fused / "fused.npy"))
    rows = {split: X[[k for k, it in enumerate(items) if it["split"] == split]]
            for split in ("train", "val", "test")}
    problem = seen["problem"]
    n_train = len(rows["train"])
    np.testing.assert_array_equal(problem.X[:n_train], rows["train"])
    if validation == "cv":
        assert len(problem.X) == n_train
        assert all(max(fit.max(), scored.max()) < n_train for fit, scored in problem.folds)
    else:
        np.testing.assert_array_equal(problem.X[n_train:], rows["val"])
        assert [len(f) for f in problem.folds[0]] == [n_train, len(rows["val"])]
        assert problem.folds[0][0].max() < n_train  # val rows are only ever scored
    for test_row in rows["test"]:
        assert not (problem.X == test_row).all(axis=1).any()


KILL_AFTER = """
import os, sys
from pathlib import Path
from mmcli.config import TrainConfig
from mmcli.models import select
from mmcli.stages import train
calls, real = [], select._fit_score
def dies(*args):  # SIGKILL-like: no cleanup, no exception handler runs
    if len(calls) == int(sys.argv[3]):
        os._exit(9)
    calls.append(1)
    return real(*args)
select._fit_score = dies
train(Path(sys.argv[1]), Path(sys.argv[2]), TrainConfig(select={"jobs": 1}))
"""


def test_a_killed_train_resumes_its_model_selection(pipeline, tmp_path):
    """Fold scores are checkpointed: a train killed during model selection scores only the
    missing folds when started again, and writes what an uninterrupted run writes."""
    import subprocess
    import sys

    from mmcli.artifacts import sha256_file

    out = tmp_path / "model"
    died = subprocess.run([sys.executable, "-c", KILL_AFTER, str(pipeline.fused), str(out),
                           "7"], capture_output=True, text=True)
    assert died.returncode == 9 and not out.exists()
    config = tmp_path / "c.yaml"
    config.write_text("train: {select: {jobs: 1}}\n")
    again = ok("train", pipeline.fused, "-o", out, "-c", config)
    assert "7 fold scores resumed from a killed run" in again.stdout
    clean = ok("train", pipeline.fused, "-o", tmp_path / "clean", "-c", config)
    assert "resumed" not in clean.stdout
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "clean")
                           for p in (tmp_path / "clean").rglob("*") if p.is_file())
    for rel in files:
        assert sha256_file(out / rel) == sha256_file(tmp_path / "clean" / rel), rel


def test_a_time_limit_that_cuts_the_search_is_a_warning(pipeline, tmp_path, capsys):
    from mmcli.cli import console
    from mmcli.cli.train import print_summary

    rows = [{"rank": 1, "model": "logreg", "params": "{}", "cv_score": "0.9", "cv_std": "0",
             "chosen": "yes", "note": ""}] + [
        {"rank": k, "model": "mlp", "params": "{}", "cv_score": "", "cv_std": "",
         "chosen": "", "note": note} for k, note in
        enumerate(["skipped: time limit", "without a; skipped: time limit",
                   "stopped after 1 of 3 folds: cannot beat 0.9000"], start=2)]
    console.configure()
    try:
        print_summary({"selection": {"validation": "3-fold cv", "leaderboard": rows},
                       "model": "logreg", "n_train": 9, "train_accuracy": 1.0,
                       "val_accuracy": None}, "out")
    finally:
        console.reset()
    assert ("warning: model selection reached its time limit: 2 settings were not scored "
            "(the estimate is the same on every machine, so is the choice); raise --time-limit "
            "(0: none) to score them") in capsys.readouterr().err
    plain = ok("train", pipeline.fused, "-o", tmp_path / "plain")
    assert "time limit" not in plain.stderr


def test_a_time_limit_cuts_the_same_search_on_one_core_or_two(tmp_path):
    """--time-limit is in estimated seconds: the cut, the choice and every file are the same
    with one selection worker or two (and so on a slower or busier machine)."""
    from mmcli.artifacts import sha256_file
    from mmcli.config import ExtractConfig, PreprocessConfig
    from mmcli.stages import extract, fuse, preprocess
    from mmcli.testing.dummies import make_dataset

    manifest = make_dataset(tmp_path / "data", n=36)
    rows = read_rows(manifest)
    for row in rows[::4]:  # label noise: logreg is not perfect, so the search goes on
        row["label"] = rows[(rows.index(row) + 1) % len(rows)]["label"]
    write_rows(manifest, rows)
    preprocess(manifest, tmp_path / "pre", PreprocessConfig(jobs=1))
    extract(tmp_path / "pre", tmp_path / "feat", ExtractConfig(jobs=1))
    fuse(tmp_path / "feat", tmp_path / "fused")
    outs = []
    for jobs in (1, 2):
        config = tmp_path / f"jobs{jobs}.yaml"
        config.write_text(f"train:\n  select: {{jobs: {jobs}}}\n", encoding="utf-8")
        outs.append(tmp_path / f"model{jobs}")
        run = ok("train", tmp_path / "fused", "-o", outs[-1], "-c", config, "--time-limit",
                 "0.5")
        assert "reached its time limit" in run.stderr and "of one core" in run.stdout
    rows = read_rows(outs[0] / "leaderboard.csv")
    assert any("skipped: time limit" in r["note"] for r in rows)
    for path in sorted(p.relative_to(outs[0]) for p in outs[0].rglob("*") if p.is_file()):
        if path.name != "meta.json":  # it records the config, whose jobs differ
            assert sha256_file(outs[0] / path) == sha256_file(outs[1] / path), path
    metas = [json.loads((out / "meta.json").read_text()) for out in outs]
    assert metas[0]["summary"] == metas[1]["summary"]
    assert metas[0]["outputs"] == metas[1]["outputs"]
