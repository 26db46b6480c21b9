"""A killed eval resumes the robustness points it completed; the output is byte-identical to
an eval that was never interrupted."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from mmcli import artifacts
from mmcli.report import robustness as R
from mmcli.stages import evaluate


def hashes(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


class Killed(BaseException):
    """Stands for SIGKILL: raised in the middle of the points."""


def counting(monkeypatch, kill_after: int | None = None) -> list:
    calls: list = []
    point = R._noise_point

    def wrapper(task):
        if kill_after is not None and len(calls) == kill_after:
            raise Killed
        calls.append(task)
        return point(task)

    monkeypatch.setattr(R, "_noise_point", wrapper)
    return calls


def kill_eval(pipeline, out: Path, monkeypatch, after: int) -> None:
    """An eval killed after ``after`` robustness points: like a SIGKILL, it leaves its
    temporary directory and journal behind (abort would remove them)."""
    with monkeypatch.context() as m:
        m.setattr(artifacts.StageWriter, "abort", artifacts.StageWriter._release_lock)
        counting(m, kill_after=after)
        with pytest.raises(Killed):
            evaluate(pipeline.model, pipeline.fused, out)


def test_killed_eval_resumes_its_completed_robustness_points(pipeline, tmp_path, monkeypatch):
    clean = tmp_path / "clean"
    with monkeypatch.context() as m:
        every = counting(m)
        evaluate(pipeline.model, pipeline.fused, clean)
    out = tmp_path / "runs" / "eval"
    kill_eval(pipeline, out, monkeypatch, after=3)
    assert not out.exists()
    with monkeypatch.context() as m:
        again = counting(m)
        evaluate(pipeline.model, pipeline.fused, out)
    assert len(every) > 3 and again == every[3:]  # only the points not journaled
    assert hashes(out) == hashes(clean)
    assert sorted(p.name for p in out.parent.iterdir()) == ["eval"]


def test_another_config_does_not_resume(pipeline, tmp_path, monkeypatch):
    from mmcli.config import EvalConfig

    out = tmp_path / "eval"
    kill_eval(pipeline, out, monkeypatch, after=3)
    with monkeypatch.context() as m:
        again = counting(m)
        evaluate(pipeline.model, pipeline.fused, out, EvalConfig(seed=1))
    assert len(again) == R.noise_points(R.FittedChain.load(pipeline.model), [0, .25, .5, .75, 1])


def test_a_point_killed_midway_resumes_from_its_last_slice(pipeline, tmp_path, monkeypatch):
    """A point's features are checkpointed a slice of items at a time; the output does not
    depend on the slicing."""
    from mmcli.fitted import FittedChain

    calls: list = []
    kill = {"after": None}
    features = FittedChain.features

    def counted(self, col, values):
        if len(calls) == kill["after"]:
            raise Killed
        calls.append(len(values))
        return features(self, col, values)

    monkeypatch.setattr(FittedChain, "features", counted)
    whole = tmp_path / "whole"
    evaluate(pipeline.model, pipeline.fused, whole)  # a small split: one call per point
    points, n = len(calls), calls[0]
    monkeypatch.setattr(R, "SLICE_ITEMS", 2)
    slices = -(-n // 2)
    out = tmp_path / "eval"
    with monkeypatch.context() as m:
        m.setattr(artifacts.StageWriter, "abort", artifacts.StageWriter._release_lock)
        calls.clear()
        kill["after"] = slices + 2  # the first point, then two slices of the second
        with pytest.raises(Killed):
            evaluate(pipeline.model, pipeline.fused, out)
    calls.clear()
    kill["after"] = None
    evaluate(pipeline.model, pipeline.fused, out)
    assert slices > 2 and len(calls) == points * slices - (slices + 2)
    assert hashes(out) == hashes(whole)


def test_a_killed_eval_keeps_its_scoring_and_input_checks(pipeline, tmp_path, monkeypatch):
    """What a killed eval did before its robustness points is not done again: hashing its
    inputs, predicting every item, the modality ablation; each point's record says what it
    cost (its seconds)."""
    from mmcli.fitted import FittedChain

    whole = tmp_path / "whole"
    evaluate(pipeline.model, pipeline.fused, whole)
    out = tmp_path / "eval"
    kill_eval(pipeline, out, monkeypatch, after=2)
    journal = next(out.parent.glob(".eval.tmp-*")) / artifacts.Journal.NAME
    records = artifacts.read_jsonl(journal)[1:]
    assert [r["seconds"] >= 0 for r in records if "point" in r] == [True, True]

    hashed, predicted, ablations = [], [], []
    sha256_file, predict_proba = artifacts.sha256_file, FittedChain.predict_proba
    monkeypatch.setattr(artifacts, "sha256_file",
                        lambda path, *a: hashed.append(Path(path)) or sha256_file(path, *a))
    monkeypatch.setattr(FittedChain, "predict_proba", lambda self, X, *a: predicted.append(
        len(X)) or predict_proba(self, X, *a))
    ablation = R.modality_ablation
    monkeypatch.setattr(R, "modality_ablation",
                        lambda *a: ablations.append(1) or ablation(*a))
    evaluate(pipeline.model, pipeline.fused, out)
    inputs = (pipeline.pre, pipeline.feat, pipeline.fused, pipeline.model)
    assert not [p for p in hashed if p.suffix == ".npy" and any(  # the inputs' arrays
        p.is_relative_to(d) for d in inputs)]
    n_items = len(artifacts.read_jsonl(pipeline.fused / "items.jsonl"))
    assert predicted and n_items not in predicted and not ablations
    assert hashes(out) == hashes(whole)
    assert sorted(p.name for p in out.parent.iterdir()) == ["eval", "whole"]


def test_eval_draws_the_figures_without_robustness_while_the_points_run(pipeline, tmp_path,
                                                                         monkeypatch):
    """Each figure is drawn once: those without robustness on a thread (while the points
    run), the robustness ones after the points; the output is the same as drawn in turn."""
    import threading

    from mmcli.report import plots

    drawn: list[tuple[str, str]] = []

    def recording(name, draw):
        def wrapper(*args, **kwargs):
            drawn.append((name, threading.current_thread().name))
            return draw(*args, **kwargs)
        return wrapper

    for name in ("confusion_matrix", "roc_curves", "pr_curves", "calibration",
                 "modality_ablation", "robustness_curves"):
        monkeypatch.setattr(plots, name, recording(name, getattr(plots, name)))
    evaluate(pipeline.model, pipeline.fused, tmp_path / "eval")
    assert sorted(drawn) == sorted([
        ("confusion_matrix", "mmcli-background"), ("roc_curves", "mmcli-background"),
        ("pr_curves", "mmcli-background"), ("calibration", "mmcli-background"),
        ("modality_ablation", "MainThread"), ("robustness_curves", "MainThread")])
    from mmcli.config import EvalConfig

    plain = tmp_path / "plain"  # no robustness: every figure drawn here, in turn
    drawn.clear()
    evaluate(pipeline.model, pipeline.fused, plain, EvalConfig(robustness=False))
    assert {thread for _, thread in drawn} == {"MainThread"}
    for name in ("confusion_matrix", "roc", "precision_recall", "calibration"):
        figure = f"figures/{name}.png"
        assert hashes(tmp_path / "eval")[figure] == hashes(plain)[figure]
