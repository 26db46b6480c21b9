"""Every figure is a PNG, byte-identical when drawn twice, without a Software stamp."""

from __future__ import annotations

import numpy as np
import pytest

from mmcli.report import plots

CLASSES = ["a", "b", "c"]
Y = ["a", "b", "c", "a", "b", "c", "a", "b"]
PROBA = np.random.default_rng(0).dirichlet([1, 1, 1], size=len(Y))
CURVE = {"levels": [0.0, 0.5, 1.0], "accuracy": [0.9, 0.7, 0.4], "auc": 0.675,
         "relative_robustness": 0.75}
FIGURES = {
    "confusion": lambda: plots.confusion_matrix(CLASSES, [[2, 1, 0], [0, 3, 0], [1, 0, 1]], "t"),
    "roc": lambda: plots.roc_curves(Y, PROBA, CLASSES, {c: 0.5 for c in CLASSES}, "t"),
    "pr": lambda: plots.pr_curves(Y, PROBA, CLASSES, {c: 0.5 for c in CLASSES}, "t"),
    "calibration": lambda: plots.calibration(
        [("m", PROBA.max(1), PROBA.argmax(1) == 0, 0.1)], "t"),
    "training": lambda: plots.training_curves(
        [{"epoch": 1, "train_loss": 1.0, "val_loss": 1.1, "val_accuracy": 0.5, "best": True},
         {"epoch": 2, "train_loss": 0.8, "val_loss": 1.2, "val_accuracy": 0.4}], "t"),
    "ablation": lambda: plots.modality_ablation(
        [("m", {"clean": 0.9, "removed": {"x": 0.5, "y": 0.8}})], "t"),
    "robustness": lambda: plots.robustness_curves(
        [("m", {"x/noise": {**CURVE, "column": "x", "perturbation": "noise"},
                "y/drop": {**CURVE, "column": "y", "perturbation": "drop"}}),
         ("n", {"x/noise": {**CURVE, "column": "x", "perturbation": "noise"}})], "t"),
    "bars": lambda: plots.comparison_bars(
        [("m", {"accuracy": 0.8, "balanced_accuracy": 0.7, "macro_f1": 0.6,
                "ci": {"accuracy": [0.7, 0.9]}})], "t"),
    "roc_overlay": lambda: plots.roc_overlay([("m", Y, PROBA, CLASSES, 0.5)], "t"),
}


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_png_is_deterministic_and_unstamped(name):
    first, second = FIGURES[name](), FIGURES[name]()
    assert first.startswith(b"\x89PNG\r\n\x1a\n")
    assert first == second
    assert b"Software" not in first and b"matplotlib" not in first.lower()


def test_importing_the_cli_and_stages_does_not_load_matplotlib():
    import subprocess
    import sys

    code = ("import sys, mmcli.cli.app, mmcli.stages, mmcli.report.metrics\n"
            "print('matplotlib' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.strip() == "False", done.stderr


def test_roc_of_a_one_class_split_draws_a_note_and_warns_nothing():
    """A split whose items all share one label has no one-vs-rest ROC curve: matplotlib
    warned 'No artists with labels found to put in legend' (seen in the suite's eval of a
    tracked pipeline)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        png = plots.roc_curves(["a"] * 4, PROBA[:4], CLASSES, {}, "t")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
