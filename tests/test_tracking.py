"""MLflow tracking of train, eval and run, against a real local file store made by the test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mmcli.testing.dummies import make_dataset
from tests.cli.helpers import fails, ok, run

mlflow = pytest.importorskip("mlflow")
FAST = ("train: {select: {candidates: [logreg], drop_blocks: false}}\n"
        "eval: {bootstrap: 0, robustness: false}\n")


@pytest.fixture
def store(tmp_path, monkeypatch):
    """MLFLOW_TRACKING_URI at a fresh file store; its client."""
    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # mlflow 3 wants a database else
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    return mlflow.tracking.MlflowClient(uri)


def runs_of(client) -> list:
    return client.search_runs(["0"], order_by=["attributes.start_time ASC"])


def artifacts(client, run_id: str, path: str) -> set[str]:
    return {Path(a.path).name for a in client.list_artifacts(run_id, path)}


def test_train_and_eval_are_tracked(pipeline, tmp_path, store):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(FAST)
    ok("train", pipeline.fused, "-o", tmp_path / "model", "-c", cfg)
    ok("eval", tmp_path / "model", pipeline.fused, "-o", tmp_path / "eval", "-c", cfg)
    train_run, eval_run = runs_of(store)
    meta = json.loads((tmp_path / "model" / "meta.json").read_text())
    assert train_run.info.run_name == f"mmcli train {tmp_path / 'model'}"
    assert train_run.info.status == "FINISHED"
    assert train_run.data.params["train.model"] == "auto"
    assert train_run.data.params["train.select.candidates"] == '["logreg"]'
    assert train_run.data.tags["train.fingerprint"] == meta["fingerprint"]
    assert json.loads(train_run.data.tags["train.inputs"]) == meta["inputs"]
    assert train_run.data.tags["mmcli.command"] == "train"
    assert train_run.data.metrics["train_accuracy"] == meta["summary"]["train_accuracy"]
    assert "selection_cv_score" in train_run.data.metrics
    assert "leaderboard.csv" in artifacts(store, train_run.info.run_id, "train")

    scores = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert eval_run.data.metrics["test_accuracy"] == scores["test"]["accuracy"]
    assert eval_run.data.metrics["val_macro_f1"] == scores["val"]["macro_f1"]
    assert {"report.html", "report.md", "metrics.json", "figures"} <= artifacts(
        store, eval_run.info.run_id, "eval")
    assert "confusion_matrix.png" in artifacts(store, eval_run.info.run_id, "eval/figures")


def test_a_pipeline_run_is_one_mlflow_run(tmp_path, store):
    manifest = make_dataset(tmp_path / "data", n=15)
    pipe = tmp_path / "p.yaml"
    pipe.write_text(f"pipeline: {{manifest: {manifest}, workdir: {tmp_path / 'w'}}}\n"
                    "preprocess: {jobs: 1}\nextract: {jobs: 1}\n"
                    "train: {model: logreg}\neval: {bootstrap: 0, robustness: false}\n")
    ok("run", pipe)
    ok("run", pipe)  # the next night: nothing to do, still one entry
    first, second = runs_of(store)
    assert first.info.run_name == f"mmcli run {pipe}"
    stages = ("preprocess", "extract", "fuse", "train", "eval")
    assert {s: first.data.tags[f"{s}.action"] for s in stages} == dict.fromkeys(stages, "ran")
    assert {s: second.data.tags[f"{s}.action"] for s in stages} == dict.fromkeys(stages,
                                                                                 "skipped")
    assert first.data.params["fuse.method"] == "concat"
    assert first.data.params["preprocess.image_size"] == "[64, 64]"
    assert "jobs" not in "".join(first.data.params)  # runtime keys are not in meta.json
    for s in stages:
        meta = json.loads((tmp_path / "w" / {"preprocess": "pre", "extract": "feat",
                                              "fuse": "fused", "train": "model",
                                              "eval": "eval"}[s] / "meta.json").read_text())
        assert second.data.tags[f"{s}.fingerprint"] == meta["fingerprint"]
    assert first.data.metrics["test_accuracy"] == second.data.metrics["test_accuracy"]
    assert "report.html" in artifacts(store, first.info.run_id, "eval")
    # --dry-run computes nothing: no MLflow run
    ok("run", pipe, "--dry-run")
    assert len(runs_of(store)) == 2


def test_a_server_that_is_down_costs_a_warning(pipeline, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # nothing listens there
    result = ok("eval", pipeline.model, pipeline.fused, "-o", tmp_path / "eval",
                "--no-robustness")
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "MLflow tracking failed (start the run" in warnings[0]
    assert (tmp_path / "eval" / "report.html").is_file()


def test_without_mlflow(pipeline, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    line = fails(2, "eval", pipeline.model, pipeline.fused, "-o", tmp_path / "e", "--track")
    assert "--track needs mlflow" in line and "mmcli[mlflow]" in line
    assert not (tmp_path / "e").exists()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    result = run("eval", pipeline.model, pipeline.fused, "-o", tmp_path / "e", "--no-robustness")
    assert result.exit_code == 0 and "mlflow is not installed; not tracking" in result.stderr
    result = ok("eval", pipeline.model, pipeline.fused, "-o", tmp_path / "e2", "--no-robustness",
                "--no-track")
    assert "warning" not in result.stderr


def test_help_imports_neither_mlflow_nor_pyarrow():
    code = ("import sys; from mmcli.cli.app import app\n"
            "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('mlflow', 'pyarrow') if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
           "MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=60)
    assert done.stdout.splitlines()[-1] == "[]", done.stderr
