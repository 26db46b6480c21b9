"""eval: metrics per split, robustness, figures, a readable report and per-item predictions.

Output directory::

    meta.json
    metrics.json        {"<split>": {accuracy, balanced_accuracy, macro_f1, weighted_f1, n,
                         per_class: {label: {precision, recall, f1 (null: 0/0), support}},
                         confusion_matrix: {labels, matrix},
                         roc_auc_macro, average_precision_macro, log_loss, ece,
                         roc_auc: {label: auc}, average_precision: {label: ap},
                         ci: {level, resamples, accuracy, balanced_accuracy, macro_f1}},
                         "test" also: robustness: {ablation, noise, notes}}; a split with
                         missing modality cells also: missing: [{pattern, missing, n,
                         accuracy, balanced_accuracy, macro_f1}] per missingness pattern
    report.md           the headline numbers as tables
    report.html         everything, figures embedded: open it in a browser
    figures/*.png       the figures of the report
    predictions.csv     id, split, label, prediction, prob_<class>... for every item,
                        prediction_<task> per extra task of a multi-task model, and
                        ``missing`` (absent modalities joined by "|") when an item lacks one
    metrics.json        each split also has "tasks": {<task>: metrics} for the extra tasks of
                        a multi-task model (as above for a classification task; n, mae,
                        rmse, r2 for a regression task)
    comparison.json     with --compare: each run's test metrics and robustness

See docs/evaluation.md for every definition.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmcli import artifacts, storage
from mmcli.config import EvalConfig, to_dict
from mmcli.errors import ArtifactError, DataError, UsageError
from mmcli.missing import missing_of, pattern_name, presence
from mmcli.missing import predict_proba as masked_predict_proba
from mmcli.progress import ProgressFactory, silent
from mmcli.report.metrics import classification_metrics  # noqa: F401  (public re-export)
from mmcli.stages.preprocess import PreprocessState, check_label


@dataclass
class Run:
    """One model scored on one fuse directory."""

    name: str
    model: artifacts.StageDir
    fused: artifacts.StageDir
    chain: object
    items: list[dict]
    classes: list[str]
    proba: np.ndarray
    metrics: dict
    robustness: dict | None = None
    #: extra task name -> predicted class or value per item (multi-task models)
    task_pred: dict | None = None

    @property
    def pred(self) -> list[str]:
        return [self.classes[k] for k in self.proba.argmax(1)]

    def split(self, split: str) -> tuple[list[str], np.ndarray]:
        rows = [k for k, it in enumerate(self.items) if it["split"] == split]
        return [self.items[k]["label"] for k in rows], self.proba[rows]


@storage.staged("model_dir", "fused_dir")
def evaluate(model_dir: Path, fused_dir: Path, out: Path, config: EvalConfig | None = None,
             progress: ProgressFactory = silent,
             compare: list[tuple[Path, Path | None]] = ()) -> dict:
    """Evaluate a trained model on the splits of a fuse directory; returns the metrics.

    ``compare`` lists more (model directory, fuse directory) pairs to put side by side in the
    report; a ``None`` fuse directory means the one the model was trained from.
    """
    config = config or EvalConfig()
    check_config(config)
    runs = [score(model_dir, fused_dir, config, progress)]
    for model_path, fused_path in compare:
        runs.append(score(model_path, fused_path or trained_from(model_path), config, progress))
    _name_runs(runs)
    main = runs[0]

    from mmcli.report import html, plots

    with artifacts.StageWriter(out, "eval", tuple(p for r in runs
                                                   for p in (r.model.path, r.fused.path))) as w:
        artifacts.write_json(w.path / "metrics.json", main.metrics)
        _write_predictions(w.path / "predictions.csv", main.items, main.pred, main.proba,
                           main.classes, main.task_pred or {})
        fusion = artifacts.read_json(main.fused.path / "fusion.json")
        (w.path / "report.md").write_text(
            render_report(main.metrics, main.model.meta, fusion), encoding="utf-8")
        figures = make_figures(runs, plots)
        for name, png in figures.items():
            (w.path / "figures").mkdir(exist_ok=True)
            (w.path / "figures" / f"{name}.png").write_bytes(png)
        ctx = report_context(runs, config)
        if len(runs) > 1:
            artifacts.write_json(w.path / "comparison.json", ctx["compare"], sort_keys=False)
        (w.path / "report.html").write_text(html.render(ctx, figures), encoding="utf-8")
        inputs = {}
        for r in runs:
            inputs[str(r.model.path)] = r.model.meta_hash()
            inputs[str(r.fused.path)] = r.fused.meta_hash()
        w.commit(to_dict(config), config.seed, inputs,
                 {s: {k: m[k] for k in ("accuracy", "macro_f1", "n")}
                  for s, m in main.metrics.items()})
    return main.metrics


def check_config(config: EvalConfig) -> None:
    from mmcli.report.robustness import check_levels

    unknown = [s for s in config.splits if s not in ("train", "val", "test")]
    if unknown or not config.splits:
        raise UsageError(f"config 'eval.splits' is {config.splits!r}",
                         "list one or more of train, val, test")
    if config.bootstrap < 0:
        raise UsageError(f"config 'eval.bootstrap' is {config.bootstrap!r}",
                         "give the number of bootstrap resamples (0 turns intervals off)")
    check_levels(config.noise_levels)
    if config.noise_max_items < 0:
        raise UsageError(f"config 'eval.noise_max_items' is {config.noise_max_items!r}",
                         "give a number of test items (0: all)")


def trained_from(model_dir: Path) -> Path:
    """The fuse directory a model directory was trained from (its recorded input)."""
    from mmcli.report.chain import input_of

    model = artifacts.open_stage(model_dir, "train", "mmcli eval --compare")
    notes: list[str] = []
    fused = input_of(model, "fuse", notes)
    if fused is None:
        raise ArtifactError(f"--compare {model_dir}: {notes[0]}",
                            f"name the fuse directory too: --compare {model_dir}:FUSED_DIR")
    return fused.path


def score(model_dir: Path, fused_dir: Path, config: EvalConfig,
          progress: ProgressFactory = silent) -> Run:
    """Predict every item of ``fused_dir`` with the model; metrics and robustness."""
    from mmcli.models import load_model
    from mmcli.report.chain import find_chain
    from mmcli.report.metrics import bootstrap_ci, probabilistic_metrics

    model_stage = artifacts.open_stage(model_dir, "train", "mmcli eval")
    fused = artifacts.open_stage(fused_dir, "fuse", "mmcli eval")
    check_same_fusion(model_stage.path, fused.path)
    check_label(PreprocessState.load(fused.path / "state"), config.label, fused.path)
    model, classes = load_model(model_stage.path / "state" / "model")
    items = artifacts.read_jsonl(fused.path / "items.jsonl")
    X = artifacts.load_npy(fused.path / "fused.npy")
    mask = presence(items, artifacts.read_json(fused.path / "fusion.json")["modalities"])
    with progress("eval", len(items)) as bar:
        proba = np.asarray(masked_predict_proba(model, np.asarray(X), mask), dtype=np.float64)
        bar.advance(len(items))
    from mmcli.stages.train import extra_task_predictions

    run = Run(model_stage.path.name, model_stage, fused, find_chain(fused), items, classes,
              proba, {}, task_pred=extra_task_predictions(model, X))

    for split in config.splits:
        y_true, p = run.split(split)
        if not y_true:
            continue
        y_pred = [classes[k] for k in p.argmax(1)]
        m = classification_metrics(y_true, y_pred, classes)
        m.update(probabilistic_metrics(y_true, p, classes))
        m["roc_auc"] = {label: m["roc_auc"].get(label) for label in m["per_class"]}
        m["average_precision"] = {label: m["average_precision"].get(label)
                                  for label in m["per_class"]}
        if config.bootstrap:
            m["ci"] = bootstrap_ci(y_true, y_pred, config.bootstrap, config.seed)
        run.metrics[split] = m
        _add_task_metrics(m, model, items, X, split)
        patterns = missing_patterns(items, proba, classes, split)
        if patterns:
            m["missing"] = patterns
    if "test" in config.splits and "test" not in run.metrics:
        raise DataError(f"{fused.path} has no test items to evaluate",
                        "give some rows split=test, or raise preprocess.split.test")
    if not run.metrics:
        raise DataError(f"{fused.path} has no items in the splits {config.splits!r}",
                        "choose other eval.splits")
    if config.robustness:
        run.robustness = measure_robustness(run, config, progress)
        if "test" in run.metrics:
            run.metrics["test"]["robustness"] = run.robustness
    return run


def missing_patterns(items: list[dict], proba: np.ndarray, classes: list[str],
                     split: str) -> list[dict] | None:
    """Metrics of ``split`` per missingness pattern of its items (all present, each set of
    absent modalities that occurs), on the real missing cells; None when no item of the split
    lacks a modality. Ordered: all present, then by number of absent modalities, then name."""
    groups: dict[tuple, list[int]] = {}
    for k, it in enumerate(items):
        if it["split"] == split:
            groups.setdefault(tuple(missing_of(it)), []).append(k)
    if set(groups) <= {()}:
        return None
    out = []
    for pattern in sorted(groups, key=lambda p: (len(p), p)):
        rows = groups[pattern]
        y_true = [items[k]["label"] for k in rows]
        y_pred = [classes[k] for k in proba[rows].argmax(1)]
        m = classification_metrics(y_true, y_pred, classes)
        out.append({"pattern": pattern_name(pattern), "missing": list(pattern), "n": len(rows),
                    **{key: m[key] for key in ("accuracy", "balanced_accuracy", "macro_f1")}})
    return out


def _add_task_metrics(m: dict, model, items, X, split: str) -> None:
    """Multi-task models (train.tasks): metrics of the extra tasks under ``tasks``
    (owned by issue 4, see mmcli.stages.train.extra_task_metrics)."""
    from mmcli.stages.train import extra_task_metrics

    tasks = extra_task_metrics(model, items, X, split)
    if tasks:
        m["tasks"] = tasks


def measure_robustness(run: Run, config: EvalConfig, progress: ProgressFactory) -> dict:
    from mmcli.report.robustness import Fitted, modality_ablation, noise_robustness

    out: dict = {"ablation": None, "noise": None, "notes": []}
    if "test" not in run.metrics:
        out["notes"].append("robustness is measured on the test split, which is not evaluated "
                            "(eval.splits)")
        return out
    fitted = Fitted.load(run.model.path)
    chain = run.chain
    ids = [it["id"] for it in run.items]
    if chain.extract is None:
        out["notes"].append("modality ablation skipped: the extract directory behind "
                            f"{run.fused.path} was not reachable")
    elif [it["id"] for it in artifacts.read_jsonl(chain.extract.path / "items.jsonl")] != ids:
        out["notes"].append(f"modality ablation skipped: {chain.extract.path} holds other items")
    else:
        out["ablation"] = modality_ablation(fitted, chain.extract.path, run.items)
    if chain.preprocess is None:
        out["notes"].append("noise robustness skipped: the preprocess directory behind "
                            f"{run.fused.path} was not reachable")
    elif [it["id"] for it in artifacts.read_jsonl(chain.preprocess.path / "items.jsonl")] \
            != ids:
        out["notes"].append(f"noise robustness skipped: {chain.preprocess.path} holds other "
                            "items")
    else:
        out["noise"] = noise_robustness(fitted, chain.preprocess.path, config.noise_levels,
                                        config.seed, progress, config.noise_max_items)
    return out


def check_same_fusion(model_path: Path, fused_path: Path) -> None:
    """Refuse to evaluate a model on features fused by another fitted pipeline."""
    for rel in ("fuse/fuse.json", "fuse/fuse.npz"):
        a, b = model_path / "state" / rel, fused_path / "state" / rel
        if a.exists() != b.exists() or (a.exists() and
                                        artifacts.sha256_file(a) != artifacts.sha256_file(b)):
            raise ArtifactError(
                f"{fused_path} was not made by the pipeline that {model_path} was trained on",
                "evaluate on the fuse directory that the model was trained from",
            )


def _name_runs(runs: list[Run]) -> None:
    """Runs are named by their model directory's name, or its path when names repeat."""
    names = [r.model.path.name for r in runs]
    for r in runs:
        r.name = r.model.path.name if names.count(r.model.path.name) == 1 else str(r.model.path)
    if len({r.name for r in runs}) < len(runs):
        raise UsageError("the same model directory is compared with itself",
                         "give each model directory once")


def focus_split(metrics: dict) -> str:
    return "test" if "test" in metrics else list(metrics)[-1]


def make_figures(runs: list[Run], plots) -> dict[str, bytes]:
    main = runs[0]
    split = focus_split(main.metrics)
    m = main.metrics[split]
    y_true, proba = main.split(split)
    cm = m["confusion_matrix"]
    figures = {
        "confusion_matrix": plots.confusion_matrix(cm["labels"], cm["matrix"],
                                                   f"{main.name}: confusion matrix ({split})"),
        "roc": plots.roc_curves(y_true, proba, main.classes, m["roc_auc"],
                                f"{main.name}: ROC, one-vs-rest ({split})"),
        "precision_recall": plots.pr_curves(y_true, proba, main.classes,
                                            m["average_precision"],
                                            f"{main.name}: precision-recall ({split})"),
        "calibration": plots.calibration([_calibration_run(main, split)],
                                         f"{main.name}: calibration ({split})"),
    }
    log = artifacts.read_jsonl(main.model.path / "train_log.jsonl") \
        if (main.model.path / "train_log.jsonl").is_file() else []
    if log:
        figures["training_curves"] = plots.training_curves(log, f"{main.name}: training")
    rob = main.robustness or {}
    if rob.get("ablation"):
        figures["modality_ablation"] = plots.modality_ablation(
            [(main.name, rob["ablation"])], "modality ablation (test)")
    if rob.get("noise"):
        figures["robustness"] = plots.robustness_curves([(main.name, rob["noise"])],
                                                        "accuracy under noise (test)")
    if len(runs) > 1:
        scored = [r for r in runs if "test" in r.metrics]
        if scored:
            figures["compare_scores"] = plots.comparison_bars(
                [(r.name, r.metrics["test"]) for r in scored], "test scores per run")
            figures["compare_roc"] = plots.roc_overlay(
                [(r.name, *r.split("test"), r.classes, r.metrics["test"]["roc_auc_macro"])
                 for r in scored], "ROC per run (test, micro-averaged)")
            figures["compare_calibration"] = plots.calibration(
                [_calibration_run(r, "test") for r in scored], "calibration per run (test)")
        ablations = [(r.name, r.robustness["ablation"]) for r in runs
                     if r.robustness and r.robustness.get("ablation")]
        if len(ablations) > 1:
            figures["compare_ablation"] = plots.modality_ablation(
                ablations, "modality ablation per run (test)")
        noises = [(r.name, r.robustness["noise"]) for r in runs
                  if r.robustness and r.robustness.get("noise")]
        if len(noises) > 1:
            figures["compare_robustness"] = plots.robustness_curves(
                noises, "accuracy under noise per run (test)")
    return figures


def _calibration_run(run: Run, split: str):
    y_true, proba = run.split(split)
    correct = np.array([run.classes[k] == t for k, t in zip(proba.argmax(1), y_true)])
    return run.name, proba.max(1), correct, run.metrics[split]["ece"]


def report_context(runs: list[Run], config: EvalConfig) -> dict:
    """Everything report.html shows besides the figures (see mmcli/report/html.py)."""
    from importlib import metadata

    main = runs[0]
    fusion = artifacts.read_json(main.fused.path / "fusion.json")
    chain = main.chain
    counts: dict[str, dict[str, int]] = {}
    for split in ("train", "val", "test"):
        labels = [it["label"] for it in main.items if it["split"] == split]
        if labels:
            counts[split] = {c: labels.count(c) for c in sorted(set(labels))}
    failures, failures_path = None, None
    if chain.preprocess is not None:
        failures_path = chain.preprocess.path / "failures.csv"
        with open(failures_path, encoding="utf-8", newline="") as f:
            failures = list(csv.DictReader(f))
    versions = artifacts.library_versions()
    try:
        versions["matplotlib"] = metadata.version("matplotlib")
    except metadata.PackageNotFoundError:  # pragma: no cover - a dependency
        versions["matplotlib"] = "not installed"
    compare = []
    if len(runs) > 1:
        for r in runs:
            rfusion = artifacts.read_json(r.fused.path / "fusion.json")
            compare.append({
                "name": r.name, "model_path": str(r.model.path), "fused_path": str(r.fused.path),
                "model": trained_model(r.model.meta), "fusion": rfusion["method"],
                "test": {k: v for k, v in r.metrics["test"].items() if k != "robustness"}
                if "test" in r.metrics else None,
                "robustness": r.robustness})
    return {
        "name": main.name,
        "model_path": str(main.model.path),
        "fused_path": str(main.fused.path),
        "headline": {"model": trained_model(main.model.meta),
                     "fusion": fusion["method"], "modalities": fusion["modalities"]},
        "metrics": main.metrics,
        "focus": focus_split(main.metrics),
        "robustness": main.robustness,
        "data": {"counts": counts, "failures": failures,
                 "failures_path": str(failures_path) if failures_path else None,
                 "notes": chain.notes},
        "configs": {
            "preprocess": chain.preprocess.meta["config"] if chain.preprocess else None,
            "extract": chain.extract.meta["config"] if chain.extract else None,
            "fuse": main.fused.meta["config"],
            "train": main.model.meta["config"],
            "eval": to_dict(config),
        },
        "versions": versions,
        "compare": compare,
        "selection": main.model.meta.get("summary", {}).get("selection"),
    }


def _write_predictions(path: Path, items, pred, proba, classes, tasks: dict) -> None:
    from mmcli.stages.predict import missing_column

    extra = {f"prediction_{t}": v for t, v in tasks.items()}
    extra.update(missing_column(items))
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["id", "split", "label", "prediction", *(f"prob_{c}" for c in classes),
                         *extra])
        for k, (it, p, row) in enumerate(zip(items, pred, proba)):
            writer.writerow([it["id"], it["split"], it["label"], p, *(f"{v:.6f}" for v in row),
                             *(v[k] for v in extra.values())])


def _f(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def trained_model(model_meta: dict) -> str:
    """The model a train directory holds: ``auto`` in the config resolves to a real name,
    recorded in the summary."""
    name = model_meta.get("summary", {}).get("model") or model_meta["config"].get("model", "?")
    configured = model_meta["config"].get("model")
    return f"{name} (auto)" if configured == "auto" and name != "auto" else name


def _selection_md(selection: dict | None) -> list[str]:
    """report.md's leaderboard of train's model auto (none for a named model)."""
    if not selection or not selection.get("leaderboard"):
        return []
    lines = ["", f"## Model selection ({selection['validation']}, macro-F1)", "",
             "| rank | model | params | score | std | |", "|---:|---|---|---:|---:|---|"]
    for row in selection["leaderboard"]:
        mark = ("**chosen** " if row["chosen"] else "") + row["note"]
        lines.append(f"| {row['rank']} | {row['model']} | `{row['params']}` | "
                     f"{row['cv_score']} | {row['cv_std']} | {mark.strip()} |")
    return lines


def _missing_md(metrics: dict) -> list[str]:
    """report.md's metrics per missingness pattern (real missing cells), per split."""
    lines: list[str] = []
    for split, m in metrics.items():
        if not m.get("missing"):
            continue
        lines += ["", f"## Missing modalities ({split}; real missing cells)", "",
                  "| pattern | n | accuracy | balanced accuracy | macro F1 |",
                  "|---|---:|---:|---:|---:|"]
        lines += [f"| {p['pattern']} | {p['n']} | {p['accuracy']:.3f} | "
                  f"{p['balanced_accuracy']:.3f} | {p['macro_f1']:.3f} |" for p in m["missing"]]
    return lines


def render_report(metrics: dict, model_meta: dict, fusion: dict) -> str:
    cfg = model_meta["config"]
    lines = [
        "# mmcli evaluation report",
        "",
        f"- model: `{trained_model(model_meta)}` (seed {cfg['seed']})",
        f"- fusion: `{fusion['method']}` of {', '.join(f'`{m}`' for m in fusion['modalities'])}"
        f" ({fusion['dim']} features)",
        "- figures, robustness, data summary and configuration: `report.html`",
        "",
        "## Metrics per split",
        "",
        "| split | n | accuracy | balanced accuracy | macro F1 | weighted F1 | ROC-AUC | "
        "log-loss | ECE |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for split, m in metrics.items():
        lines.append(f"| {split} | {m['n']} | {m['accuracy']:.3f} | "
                     f"{m['balanced_accuracy']:.3f} | {m['macro_f1']:.3f} | "
                     f"{m['weighted_f1']:.3f} | {_f(m.get('roc_auc_macro'))} | "
                     f"{_f(m.get('log_loss'))} | {_f(m.get('ece'))} |")
    lines += _selection_md(model_meta.get("summary", {}).get("selection"))
    with_ci = [(s, m["ci"]) for s, m in metrics.items() if m.get("ci")]
    if with_ci:
        level = with_ci[0][1]["level"]
        lines += ["", f"## Bootstrap {level:.0%} intervals ({with_ci[0][1]['resamples']} "
                  "resamples)", "", "| split | accuracy | balanced accuracy | macro F1 |",
                  "|---|---|---|---|"]
        for split, ci in with_ci:
            lines.append(f"| {split} | " + " | ".join(
                f"{ci[k][0]:.3f} - {ci[k][1]:.3f}"
                for k in ("accuracy", "balanced_accuracy", "macro_f1")) + " |")
    for split in [s for s in ("test",) if s in metrics] or list(metrics)[-1:]:
        m = metrics[split]
        lines += ["", f"## Per class ({split})", "",
                  "| class | precision | recall | F1 | support |", "|---|---:|---:|---:|---:|"]
        for label, c in m["per_class"].items():
            lines.append(f"| {label} | {_f(c['precision'])} | {_f(c['recall'])} | "
                         f"{_f(c['f1'])} | {c['support']} |")
        cm = m["confusion_matrix"]
        lines += ["", f"## Confusion matrix ({split}; rows: true, columns: predicted)", "",
                  "| true \\ predicted | " + " | ".join(cm["labels"]) + " |",
                  "|---|" + "---:|" * len(cm["labels"])]
        for label, row in zip(cm["labels"], cm["matrix"]):
            lines.append(f"| {label} | " + " | ".join(str(v) for v in row) + " |")
    rob = metrics.get("test", {}).get("robustness") or {}
    if rob.get("ablation"):
        a = rob["ablation"]
        lines += ["", "## Modality ablation (test)", "", "| modalities | accuracy |",
                  "|---|---:|", f"| all | {a['clean']:.3f} |"]
        lines += [f"| without {c} | {v:.3f} |" for c, v in a["removed"].items()]
    if rob.get("noise"):
        lines += ["", "## Noise robustness (test)", "",
                  "| modality | perturbation | accuracy per severity level | relative robustness |",
                  "|---|---|---|---:|"]
        for c in rob["noise"].values():
            lines.append(f"| {c['column']} | {c['perturbation']} | "
                         + " ".join(f"{a:.3f}" for a in c["accuracy"])
                         + f" | {_f(c['relative_robustness'])} |")
    for note in rob.get("notes", []):
        lines += ["", f"- note: {note}"]
    lines += _missing_md(metrics)
    from mmcli.report.metrics import task_tables

    for name, header, rows in task_tables(metrics):
        lines += ["", f"## Extra task `{name}`", "", "| " + " | ".join(header) + " |",
                  "|---|" + "---:|" * (len(header) - 1)]
        lines += ["| " + " | ".join(str(v) if isinstance(v, (int, str)) else _f(v)
                                    for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
