"""One self-contained HTML page per eval: inline CSS, figures as base64 ``data:`` URIs, no
scripts and no external resources, so it opens offline in any browser and can be mailed as one
file.

``render`` takes the report context that ``mmcli.stages.evaluate`` assembles (see there) and
the PNG bytes of every figure.
"""

from __future__ import annotations

import base64
import json
from html import escape

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto;
       max-width: 1100px; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd;
     padding-bottom: 0.2em; margin-top: 2em; } h3 { margin-top: 1.4em; }
table { border-collapse: collapse; margin: 0.6em 0 1em; font-size: 0.92em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f4f4f4; }
figure { margin: 0.8em 0; display: inline-block; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #555; max-width: 640px; }
pre { background: #f7f7f7; padding: 0.6em; overflow-x: auto; font-size: 0.85em; }
.note { color: #8a5a00; } .muted { color: #666; font-size: 0.9em; }
nav a { margin-right: 0.9em; }
"""


def fmt(value) -> str:
    """Numbers as the report prints them: ints as they are, floats to three decimals."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.3f}"
    return escape(str(value))


def with_ci(m: dict, key: str) -> str:
    return value_ci(m.get(key), (m.get("ci") or {}).get(key))


def value_ci(value, ci: list | None) -> str:
    """A value and, when given, its interval [low, high] after it, muted."""
    text = fmt(value)
    return f"{text} <span class='muted'>[{fmt(ci[0])}, {fmt(ci[1])}]</span>" if ci else text


def table(header: list[str], rows: list[list], raw: bool = False) -> str:
    """A table; cells are formatted with ``fmt`` unless ``raw`` (then they are HTML already)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{c if raw else fmt(c)}</td>" for c in row) + "</tr>"
        for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def figure(png: bytes, alt: str, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f"<figure><img src=\"data:image/png;base64,{data}\" alt=\"{escape(alt)}\">"
            f"<figcaption>{escape(caption)}</figcaption></figure>")


def notes(lines: list[str]) -> str:
    return "".join(f"<p class='note'>{escape(line)}</p>" for line in lines)


def render(ctx: dict, figures: dict[str, bytes]) -> str:
    """The whole page. ``figures`` maps a figure name (``figures/<name>.png``) to PNG bytes."""
    sections = [
        ("data", "Data", _data(ctx)),
        ("metrics", "Metrics", _metrics(ctx)),
        ("figures", "Figures", _figures(ctx, figures)),
        ("robustness", "Robustness", _robustness(ctx, figures)),
    ]
    if ctx["compare"]:
        sections.append(("comparison", "Comparison", _comparison(ctx, figures)))
    if (ctx.get("selection") or {}).get("leaderboard"):
        sections.append(("selection", "Model selection", _selection(ctx["selection"])))
    sections.append(("config", "Configuration and versions", _config(ctx)))
    nav = "".join(f"<a href='#{key}'>{escape(title)}</a>" for key, title, _ in sections)
    body = "".join(f"<section id='{key}'><h2>{escape(title)}</h2>{html}</section>"
                   for key, title, html in sections)
    head = ctx["headline"]
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>mmcli evaluation: {escape(ctx['name'])}</title><style>{CSS}</style></head>"
        f"<body><h1>mmcli evaluation report</h1>"
        f"<p>model <b>{escape(head['model'])}</b> ({escape(ctx['model_path'])}) on "
        f"<b>{escape(head['fusion'])}</b> fusion of {escape(', '.join(head['modalities']))} "
        f"({escape(ctx['fused_path'])}).</p><nav>{nav}</nav>{body}</body></html>\n")


def _data(ctx: dict) -> str:
    data = ctx["data"]
    splits = list(data["counts"])
    classes = sorted({c for counts in data["counts"].values() for c in counts})
    rows = [[c, *(data["counts"][s].get(c, 0) for s in splits),
             sum(data["counts"][s].get(c, 0) for s in splits)] for c in classes]
    rows.append(["all", *(sum(data["counts"][s].values()) for s in splits),
                 sum(sum(v.values()) for v in data["counts"].values())])
    html = "<h3>Items per split and class</h3>" + table(["class", *splits, "all"], rows)
    html += "<h3>Items left out by preprocess</h3>"
    failures, kept = _split_failures(data["failures"])
    if failures is None:
        html += notes(["the preprocess directory was not reachable, so the items it left out "
                       "are unknown", *data["notes"]])
    elif not failures:
        html += "<p>none: preprocess kept every row of the manifest.</p>"
    else:
        by_reason: dict[tuple[str, str], int] = {}
        for f in failures:
            key = (f["column"], f["reason"].split(" (")[0].split(":")[0])
            by_reason[key] = by_reason.get(key, 0) + 1
        html += f"<p>{len(failures)} item(s) left out (from {escape(data['failures_path'])}).</p>"
        html += table(["column", "reason", "items"],
                      [[c, r, n] for (c, r), n in sorted(by_reason.items())])
        shown = failures[:200]
        html += "<details><summary>every item left out" + (
            f" (first {len(shown)})" if len(shown) < len(failures) else "") + "</summary>"
        html += table(["row", "id", "column", "reason"],
                      [[f["row"], f["id"], f["column"], f["reason"]] for f in shown])
        html += "</details>"
    if kept:
        counts = {}
        for f in kept:
            counts[f["column"]] = counts.get(f["column"], 0) + 1
        html += ("<h3>Missing modalities of kept items</h3><p>These rows were kept without the "
                 "modality (see the metrics per missingness pattern under Robustness).</p>")
        html += table(["column", "items"], [[c, n] for c, n in sorted(counts.items())])
    return html


def _split_failures(failures: list[dict] | None) -> tuple[list[dict] | None, list[dict]]:
    """failures.csv as (rows left out, missing cells of kept rows)."""
    from mmcli.missing import KEPT_PREFIX

    if failures is None:
        return None, []
    return ([f for f in failures if not f["reason"].startswith(KEPT_PREFIX)],
            [f for f in failures if f["reason"].startswith(KEPT_PREFIX)])


def _metrics(ctx: dict) -> str:
    metrics = ctx["metrics"]
    level = next((m["ci"]["level"] for m in metrics.values() if m.get("ci")), None)
    resamples = next((m["ci"]["resamples"] for m in metrics.values() if m.get("ci")), None)
    header = ["split", "n", "accuracy", "balanced accuracy", "macro F1", "weighted F1",
              "ROC-AUC (macro)", "AP (macro)", "log-loss", "ECE"]
    rows = [[escape(s), fmt(m["n"]), with_ci(m, "accuracy"), with_ci(m, "balanced_accuracy"),
             with_ci(m, "macro_f1"), fmt(m["weighted_f1"]), fmt(m.get("roc_auc_macro")),
             fmt(m.get("average_precision_macro")), fmt(m.get("log_loss")), fmt(m.get("ece"))]
            for s, m in metrics.items()]
    html = table(header, rows, raw=True)
    if level is not None:
        html += (f"<p class='muted'>In brackets: bootstrap confidence intervals at level "
                 f"{fmt(level)} from {fmt(resamples)} resamples of the split's items. ROC-AUC: "
                 "one-vs-rest, averaged over the classes with positives and negatives in the "
                 "split. ECE: expected calibration error of the top-class probability over 15 "
                 "equal-width bins.</p>")
    for split, m in metrics.items():
        rows = [[label, c["precision"], c["recall"], c["f1"], c["support"],
                 m.get("roc_auc", {}).get(label), m.get("average_precision", {}).get(label)]
                for label, c in m["per_class"].items()]
        cm = m["confusion_matrix"]
        opened = " open" if split == ctx["focus"] else ""
        html += (f"<details{opened}><summary><b>{escape(split)}</b>: per class and confusion "
                 "matrix</summary>")
        html += table(["class", "precision", "recall", "F1", "support", "ROC-AUC", "AP"], rows)
        html += "<p class='muted'>Confusion matrix: rows true, columns predicted.</p>"
        html += table(["true \\ predicted", *cm["labels"]],
                      [[label, *row] for label, row in zip(cm["labels"], cm["matrix"])])
        html += "</details>"
    from mmcli.report.metrics import task_tables

    tables = task_tables(metrics)
    if tables:
        html += ("<h3>Extra tasks</h3><p class='muted'>Trained together with the label "
                 "(train.tasks); items without a value for a task are left out of it.</p>")
    for name, header, rows in tables:
        html += f"<h4>{escape(name)}</h4>" + table(header, rows)
    return html


def _figures(ctx: dict, figures: dict[str, bytes]) -> str:
    split = ctx["focus"]
    captions = {
        "confusion_matrix": f"Confusion matrix ({split}); shading is the share of the true "
                            "class's items.",
        "roc": f"One-vs-rest ROC curves ({split}).",
        "precision_recall": f"One-vs-rest precision-recall curves ({split}).",
        "calibration": f"Reliability diagram ({split}): accuracy against confidence in 15 "
                       "bins; on the diagonal the probabilities are calibrated.",
        "training_curves": "Training log: loss per epoch and validation accuracy.",
    }
    html = "".join(figure(figures[name], name, text) for name, text in captions.items()
                   if name in figures)
    if "training_curves" not in figures:
        html += "<p class='muted'>No training curves: the model was not trained in epochs.</p>"
    return html


def _robustness(ctx: dict, figures: dict[str, bytes]) -> str:
    rob = ctx["robustness"]
    if rob is None:
        return ("<p>Robustness was not measured (<code>--no-robustness</code>).</p>"
                + _missing_patterns(ctx["metrics"]))
    html = "<h3>Modality ablation (test split)</h3>"
    ablation = rob.get("ablation")
    if ablation:
        html += ("<p>Each modality's feature block replaced by its train mean (zero after "
                 "the fusion's normalisation); the fitted fusion and model are unchanged.</p>")
        html += table(["modalities", "test accuracy", "change"],
                      [["all", ablation["clean"], 0.0]]
                      + [[f"without {c}", a, a - ablation["clean"]]
                         for c, a in ablation["removed"].items()])
        if "modality_ablation" in figures:
            html += figure(figures["modality_ablation"], "modality_ablation",
                           "Test accuracy with each modality removed.")
    html += "<h3>Noise (test split)</h3>"
    noise = rob.get("noise")
    if noise:
        html += ("<p>One modality's preprocessed test data corrupted at increasing severity s "
                 "(the others clean), then the fitted extractors, fusion and model. Relative "
                 "robustness: area under accuracy-vs-severity divided by that of a flat curve "
                 "at clean accuracy (1.000: no loss). In brackets: the 95% percentile "
                 "bootstrap interval of each accuracy over the test items.</p>")
        levels = next(iter(noise.values()))["levels"]
        rows = [[escape(c["column"]), escape(c["perturbation"]), escape(c["severity"]),
                 fmt(c["n"]), *(value_ci(a, i) for a, i in zip(
                     c["accuracy"], (c.get("ci") or {}).get("accuracy") or [None] * len(levels))),
                 fmt(c["auc"]), fmt(c["relative_robustness"])] for c in noise.values()]
        html += table(["modality", "perturbation", "at severity s", "items",
                       *(f"s={fmt(s)}" for s in levels), "AUC", "relative robustness"],
                      rows, raw=True)
        if "robustness" in figures:
            html += figure(figures["robustness"], "robustness",
                           "Test accuracy against noise severity per modality.")
    html += notes(rob.get("notes", []))
    return html + _missing_patterns(ctx["metrics"])


def _missing_patterns(metrics: dict) -> str:
    """Metrics per missingness pattern on the real missing cells (docs/missing.md)."""
    html = ""
    for split, m in metrics.items():
        if m.get("missing"):
            html += (f"<h3>Missing modalities ({escape(split)} split, real missing cells)</h3>"
                     "<p>The items grouped by which modalities their manifest rows lacked (an "
                     "empty cell, a missing or undecodable file).</p>")
            html += table(["pattern", "items", "accuracy", "balanced accuracy", "macro F1"],
                          [[p["pattern"], p["n"], p["accuracy"], p["balanced_accuracy"],
                            p["macro_f1"]] for p in m["missing"]])
    return html


def _comparison(ctx: dict, figures: dict[str, bytes]) -> str:
    rows = []
    for run in ctx["compare"]:
        m = run["test"] or {}
        rob = run.get("robustness") or {}
        relative = [c["relative_robustness"] for c in (rob.get("noise") or {}).values()
                    if c["relative_robustness"] is not None]
        rows.append([escape(run["name"]), escape(run["model"]), escape(run["fusion"]),
                     fmt(m.get("n")), with_ci(m, "accuracy") if m else "n/a",
                     with_ci(m, "macro_f1") if m else "n/a", fmt(m.get("roc_auc_macro")),
                     fmt(m.get("log_loss")), fmt(m.get("ece")),
                     fmt(sum(relative) / len(relative) if relative else None)])
    html = table(["run", "model", "fusion", "n (test)", "accuracy", "macro F1",
                  "ROC-AUC (macro)", "log-loss", "ECE", "mean relative robustness"], rows,
                 raw=True)
    html += "<p class='muted'>Runs: " + "; ".join(
        f"{escape(r['name'])} = {escape(r['model_path'])} on {escape(r['fused_path'])}"
        for r in ctx["compare"]) + ".</p>"
    captions = {
        "compare_scores": "Test scores per run with bootstrap intervals.",
        "compare_roc": "Micro-averaged one-vs-rest ROC curve per run (test).",
        "compare_calibration": "Reliability diagrams of every run (test).",
        "compare_ablation": "Modality ablation per run (test).",
        "compare_robustness": "Noise robustness per run (test).",
    }
    html += "".join(figure(figures[name], name, text) for name, text in captions.items()
                    if name in figures)
    return html


def _selection(selection: dict) -> str:
    """The leaderboard of ``train.model: auto`` (the model directory's leaderboard.csv)."""
    html = (f"<p>train chose the model by {escape(selection['validation'])} on the train "
            "split (macro F1, mean and standard deviation over the folds), then refitted it "
            "on the whole train split; see docs/models.md.</p>")
    rows = [[r["rank"], r["model"], r["params"], r["cv_score"], r["cv_std"],
             ("chosen " if r["chosen"] else "") + r["note"]] for r in selection["leaderboard"]]
    return html + table(["rank", "model", "params", "score", "std", ""], rows)


def _config(ctx: dict) -> str:
    html = "<p>The resolved configuration each stage recorded in its <code>meta.json</code>.</p>"
    for stage, config in ctx["configs"].items():
        html += f"<h3>{escape(stage)}</h3>"
        if config is None:
            html += "<p class='note'>not reachable</p>"
        else:
            html += table(["key", "value"], [
                [escape(k), f"<code>{escape(json.dumps(v, sort_keys=True, ensure_ascii=False))}"
                            "</code>"] for k, v in sorted(config.items())], raw=True)
    html += notes(ctx["data"]["notes"])
    html += "<h3>Library versions</h3>" + table(
        ["library", "version"], [[k, v] for k, v in ctx["versions"].items()])
    return html
