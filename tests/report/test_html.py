"""report.html from a hand-made context: escaping, failures, notes, no external resources."""

from __future__ import annotations

from mmcli.report import html, plots

PNG = plots.confusion_matrix(["a", "b"], [[1, 0], [0, 1]], "t")


def context(**changes) -> dict:
    m = {"n": 2, "accuracy": 0.5, "balanced_accuracy": 0.5, "macro_f1": 0.5,
         "weighted_f1": 0.5, "per_class": {"<b>a</b>": {"precision": 1.0, "recall": 0.5,
                                                         "f1": 0.667, "support": 2}},
         "confusion_matrix": {"labels": ["<b>a</b>"], "matrix": [[2]]}}
    ctx = {"name": "model", "model_path": "runs/model", "fused_path": "runs/fused",
           "headline": {"model": "logreg", "fusion": "concat", "modalities": ["image"]},
           "metrics": {"test": m}, "focus": "test", "robustness": None,
           "data": {"counts": {"test": {"<b>a</b>": 2}}, "notes": [],
                    "failures": [{"row": "3", "id": "x<1>", "column": "audio",
                                  "reason": "cannot decode audio (bad header)"},
                                 {"row": "5", "id": "y", "column": "audio",
                                  "reason": "cannot decode audio (empty)"}],
                    "failures_path": "runs/pre/failures.csv"},
           "configs": {"preprocess": None, "eval": {"seed": 0}},
           "versions": {"mmcli": "0.1.0"}, "compare": []}
    ctx.update(changes)
    return ctx


def test_everything_is_escaped_and_failures_are_grouped():
    page = html.render(context(), {"confusion_matrix": PNG})
    assert "<b>a</b>" not in page and "&lt;b&gt;a&lt;/b&gt;" in page
    assert "x&lt;1&gt;" in page
    assert "2 item(s) left out" in page
    assert "<td>audio</td><td>cannot decode audio</td><td>2</td>" in page
    assert "not reachable" in page  # the preprocess config
    assert "Robustness was not measured" in page
    assert "<script" not in page and "http" not in page
    assert page.count("data:image/png;base64,") == 1


def test_unreachable_preprocess_says_so_with_the_reason():
    data = {**context()["data"], "failures": None,
            "notes": ["the extract directory gone/feat that runs/fused was made from was not "
                      "found"]}
    page = html.render(context(data=data), {})
    assert "the preprocess directory was not reachable" in page
    assert "gone/feat" in page
