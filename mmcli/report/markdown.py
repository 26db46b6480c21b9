"""report.md: eval's headline numbers as Markdown tables (report.html shows everything)."""

from __future__ import annotations


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


def render_report(metrics: dict, model_meta: dict, fusion: dict) -> str:
    """report.md of an eval directory: metrics per split, model selection, bootstrap
    intervals, per-class scores and confusion matrix, robustness, extra tasks."""
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
    lines += _intervals_md(metrics)
    for split in [s for s in ("test",) if s in metrics] or list(metrics)[-1:]:
        lines += _per_class_md(split, metrics[split])
    lines += _robustness_md(metrics.get("test", {}).get("robustness") or {})
    lines += _missing_md(metrics)
    lines += _tasks_md(metrics)
    return "\n".join(lines) + "\n"


def _intervals_md(metrics: dict) -> list[str]:
    with_ci = [(s, m["ci"]) for s, m in metrics.items() if m.get("ci")]
    if not with_ci:
        return []
    level = with_ci[0][1]["level"]
    lines = ["", f"## Bootstrap {level:.0%} intervals ({with_ci[0][1]['resamples']} "
             "resamples)", "", "| split | accuracy | balanced accuracy | macro F1 |",
             "|---|---|---|---|"]
    for split, ci in with_ci:
        lines.append(f"| {split} | " + " | ".join(
            f"{ci[k][0]:.3f} - {ci[k][1]:.3f}"
            for k in ("accuracy", "balanced_accuracy", "macro_f1")) + " |")
    return lines


def _per_class_md(split: str, m: dict) -> list[str]:
    lines = ["", f"## Per class ({split})", "",
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
    return lines


def _robustness_md(rob: dict) -> list[str]:
    lines = []
    if rob.get("ablation"):
        a = rob["ablation"]
        lines += ["", "## Modality ablation (test)", "", "| modalities | accuracy |",
                  "|---|---:|", f"| all | {a['clean']:.3f} |"]
        lines += [f"| without {c} | {v:.3f} |" for c, v in a["removed"].items()]
    if rob.get("noise"):
        lines += ["", "## Noise robustness (test)", "",
                  "| modality | perturbation | accuracy per severity level [95% bootstrap "
                  "interval] | relative robustness |",
                  "|---|---|---|---:|"]
        for c in rob["noise"].values():
            ci = (c.get("ci") or {}).get("accuracy") or [None] * len(c["accuracy"])
            lines.append(f"| {c['column']} | {c['perturbation']} | "
                         + ", ".join(f"{a:.3f}" + (f" [{i[0]:.3f}, {i[1]:.3f}]" if i else "")
                                     for a, i in zip(c["accuracy"], ci))
                         + f" | {_f(c['relative_robustness'])} |")
    for note in rob.get("notes", []):
        lines += ["", f"- note: {note}"]
    return lines


def _missing_md(metrics: dict) -> list[str]:
    """Metrics per missingness pattern (real missing cells, mmcli.missing), per split."""
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


def _tasks_md(metrics: dict) -> list[str]:
    from mmcli.report.metrics import task_tables

    lines = []
    for name, header, rows in task_tables(metrics):
        lines += ["", f"## Extra task `{name}`", "", "| " + " | ".join(header) + " |",
                  "|---|" + "---:|" * (len(header) - 1)]
        lines += ["| " + " | ".join(str(v) if isinstance(v, (int, str)) else _f(v)
                                    for v in row) + " |" for row in rows]
    return lines
