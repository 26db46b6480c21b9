"""Model selection (``train.model: auto``) on every accuracy set: its time and its choice.

For each set of bench/datasets.py the default chain's preprocess, extract and fuse run once
(kept under ``--work`` and reused by later runs, also by other checkouts given the same
``--work``), then ``mmcli train`` and ``mmcli eval --no-robustness`` run as subprocesses
with this checkout's code. Printed and written per set: the train stage's wall seconds, the
chosen model and parameters (leaderboard.csv), the fold fits made, and the test accuracy
and macro-F1. Wall seconds move with the machine's load: on a shared machine compare the fold
fits and the choices.

Run it from two checkouts with different ``--label`` s to compare a change of the selection
(same fused inputs, same seed): ``--compare before,after`` prints both side by side.

    python bench/selection.py --label after [--sets digits,photos] [--work DIR]
    python bench/selection.py --compare before,after
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import accuracy  # noqa: E402  (bench/accuracy.py, beside this file)
import datasets  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def inputs(name: str, work: Path) -> tuple[Path, Path | None]:
    """The set's fused directory (built once) and the config the chain runs with."""
    manifest = datasets.build(name)
    work.mkdir(parents=True, exist_ok=True)
    pre_args, config = [], None
    if "group" in accuracy.manifest_columns(manifest):
        if accuracy.has_group_flag():
            pre_args = ["--group", "group"]
        else:
            config = accuracy.write_yaml(work / "default.yaml", {
                "preprocess": {"columns": {"group": "ignore"}}})
    if not (work / "fused" / "meta.json").exists():
        accuracy.mmcli("preprocess", str(manifest), "-o", str(work / "pre"), *pre_args,
                       config=config)
        accuracy.mmcli("extract", str(work / "pre"), "-o", str(work / "feat"), config=config)
        accuracy.mmcli("fuse", str(work / "feat"), "-o", str(work / "fused"), "--method",
                       "concat", config=config)
    return work / "fused", config


def chosen(model_dir: Path) -> tuple[str, str, int]:
    """(model, params, candidate settings scored) from the model's leaderboard.csv."""
    with open(model_dir / "leaderboard.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    best = next(r for r in rows if r["chosen"] == "yes")
    return best["model"], best["params"], sum(1 for r in rows if r["cv_score"])


def run_set(name: str, work: Path, label: str, train: dict | None = None) -> dict:
    fused, config = inputs(name, work / name)
    if train:  # extra train settings, e.g. {"params": {"calibration": "none"}}
        import yaml

        base = yaml.safe_load(config.read_text()) if config else {}
        config = accuracy.write_yaml(work / name / f"config-{label}.yaml",
                                     {**base, "train": train})
    model, ev = work / name / f"model-{label}", work / name / f"eval-{label}"
    train_s = accuracy.mmcli("train", str(fused), "-o", str(model), config=config)
    accuracy.mmcli("eval", str(model), str(fused), "-o", str(ev), "--no-robustness",
                   config=config)
    test = accuracy.scores(ev)["test"]
    name_, params, scored = chosen(model)
    return {"set": name, "train_s": round(train_s, 2), "model": name_, "params": params,
            "scored": scored, "accuracy": test["accuracy"], "macro_f1": test["macro_f1"]}


def fold_fits(model_dir: Path) -> int:
    """The fold fits selection made, from the leaderboard: every fold of a scored row (one
    on a val split), k of a row ``stopped after k of n folds``."""
    meta = json.loads((model_dir / "meta.json").read_text())
    folds = 1 if meta["summary"]["selection"]["validation"] == "val split" else 3
    with open(model_dir / "leaderboard.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    return sum(folds if r["cv_score"] else int(r["note"].split("stopped after ")[1].split()[0])
               if "stopped after " in r["note"] else 0 for r in rows)


def compare(labels: list[str], work: Path) -> str:
    runs = [json.loads((RESULTS / f"selection_{lab}.json").read_text()) for lab in labels]
    sets = [r["set"] for r in runs[0]]
    head = "| set | " + " | ".join(f"{lab}: train wall s | {lab}: fold fits | {lab}: choice | "
                                    f"{lab}: test acc (F1)"
                                    for lab in labels) + " | same choice |"
    lines = [head, "|---|" + "---:|---:|---|---:|" * len(labels) + "---|"]
    for name in sets:
        rows = [next(r for r in run if r["set"] == name) for run in runs]
        cells = " | ".join(f"{r['train_s']:.1f} | {fold_fits(work / name / f'model-{lab}')}"
                           f" | {r['model']} {r['params']} | "
                           f"{r['accuracy']:.3f} ({r['macro_f1']:.3f})"
                           for r, lab in zip(rows, labels))
        same = all((r["model"], r["params"]) == (rows[0]["model"], rows[0]["params"])
                   for r in rows)
        lines.append(f"| {name} | {cells} | {'yes' if same else '**no**'} |")
    totals = [sum(r["train_s"] for r in run) for run in runs]
    lines.append("| **total** | " + " | ".join(f"{t:.1f} | | | " for t in totals) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=",".join(datasets.SETS))
    parser.add_argument("--work", default=str(ROOT / "runs" / "bench" / "selection"))
    parser.add_argument("--label", default="current")
    parser.add_argument("--compare", default=None, help="labels, comma-separated")
    parser.add_argument("--train", default=None,
                        help='extra train config as JSON, e.g. \'{"select": {"cv": 5}}\'')
    args = parser.parse_args()
    if args.compare:
        text = compare(args.compare.split(","), Path(args.work))
        (RESULTS / "selection.md").write_text(text, encoding="utf-8")
        print(text)
        return 0
    results = []
    for name in args.sets.split(","):
        t0 = time.perf_counter()
        results.append(run_set(name, Path(args.work), args.label,
                               json.loads(args.train) if args.train else None))
        print(json.dumps(results[-1]), f"({time.perf_counter() - t0:.0f} s)", flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"selection_{args.label}.json").write_text(
        json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
