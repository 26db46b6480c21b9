"""The figures of an eval directory (PNG bytes by name), from its scored models.

A scored model (:class:`mmcli.stages.evaluate.ScoredModel`) gives ``name``, ``metrics``,
``classes``, ``robustness``, ``model`` (its train directory) and ``split(name)`` -> (true
labels, probabilities); the first is the evaluated model, the others come from ``--compare``.
"""

from __future__ import annotations

import numpy as np

from mmcli import artifacts


def focus_split(metrics: dict) -> str:
    """The split the figures show: test when evaluated, else the last one."""
    return "test" if "test" in metrics else list(metrics)[-1]


def make_figures(runs: list, plots, done: dict[str, bytes] | None = None) -> dict[str, bytes]:
    """Every figure of the report; ``plots`` is :mod:`mmcli.report.plots` (imported by the
    caller, as it imports matplotlib). Figures in ``done`` (made earlier from the same runs)
    are taken from there, in the same order."""
    figures: dict[str, bytes] = {}

    def add(name: str, draw) -> None:
        figures[name] = done[name] if done and name in done else draw()

    _main_figures(runs[0], plots, add)
    if len(runs) > 1:
        _comparison_figures(runs, plots, add)
    return figures


def _main_figures(main, plots, add) -> None:
    split = focus_split(main.metrics)
    m = main.metrics[split]
    y_true, proba = main.split(split)
    cm = m["confusion_matrix"]
    add("confusion_matrix", lambda: plots.confusion_matrix(
        cm["labels"], cm["matrix"], f"{main.name}: confusion matrix ({split})"))
    add("roc", lambda: plots.roc_curves(y_true, proba, main.classes, m["roc_auc"],
                                        f"{main.name}: ROC, one-vs-rest ({split})"))
    add("precision_recall", lambda: plots.pr_curves(y_true, proba, main.classes,
                                                    m["average_precision"],
                                                    f"{main.name}: precision-recall ({split})"))
    add("calibration", lambda: plots.calibration([calibration_run(main, split)],
                                                 f"{main.name}: calibration ({split})"))
    log = artifacts.read_jsonl(main.model.path / "train_log.jsonl") \
        if (main.model.path / "train_log.jsonl").is_file() else []
    if log:
        add("training_curves", lambda: plots.training_curves(log, f"{main.name}: training"))
    rob = main.robustness or {}
    if rob.get("ablation"):
        add("modality_ablation", lambda: plots.modality_ablation(
            [(main.name, rob["ablation"])], "modality ablation (test)"))
    if rob.get("noise"):
        add("robustness", lambda: plots.robustness_curves([(main.name, rob["noise"])],
                                                          "accuracy under noise (test)"))


def _comparison_figures(runs: list, plots, add) -> None:
    scored = [r for r in runs if "test" in r.metrics]
    if scored:
        add("compare_scores", lambda: plots.comparison_bars(
            [(r.name, r.metrics["test"]) for r in scored], "test scores per run"))
        add("compare_roc", lambda: plots.roc_overlay(
            [(r.name, *r.split("test"), r.classes, r.metrics["test"]["roc_auc_macro"])
             for r in scored], "ROC per run (test, micro-averaged)"))
        add("compare_calibration", lambda: plots.calibration(
            [calibration_run(r, "test") for r in scored], "calibration per run (test)"))
    ablations = [(r.name, r.robustness["ablation"]) for r in runs
                 if r.robustness and r.robustness.get("ablation")]
    if len(ablations) > 1:
        add("compare_ablation", lambda: plots.modality_ablation(
            ablations, "modality ablation per run (test)"))
    noises = [(r.name, r.robustness["noise"]) for r in runs
              if r.robustness and r.robustness.get("noise")]
    if len(noises) > 1:
        add("compare_robustness", lambda: plots.robustness_curves(
            noises, "accuracy under noise per run (test)"))


def calibration_run(run, split: str):
    """(name, confidence, correct, ECE) of one scored model on one split."""
    y_true, proba = run.split(split)
    correct = np.array([run.classes[k] == t for k, t in zip(proba.argmax(1), y_true)])
    return run.name, proba.max(1), correct, run.metrics[split]["ece"]
