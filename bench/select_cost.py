"""The cost of model selection's fold fits: measured seconds against the cost model.

``train.time_limit`` is a budget in *estimated* seconds (``mmcli.models.select.fit_cost``):
each fold fit is charged what the cost model says it takes on one core, from the data's
shape, so the same data always gets the same search and the same choice. This script measures
what the fits really take, on one core (one thread, one process, like a selection worker),
and prints the estimate beside it, so the model's constants can be checked and refitted.

For each fused directory given (``--fused NAME=DIR``, or the accuracy sets of bench/selection.py
under ``--work``), the train stage's selection problem is built exactly as ``mmcli train``
builds it; every candidate setting that is not skipped, and the first setting without each
block, is fitted on the first fold; with ``--fractions`` also on the first ``f`` of that fold's
train rows (to see how the cost grows with rows). Prints a Markdown table and writes
bench/results/select_cost.{md,json}.

    python bench/select_cost.py --work /work/selwork --fused gen=/work/costwork/gen/fused
    python bench/select_cost.py --from-json   # only the table again, from the saved JSON
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # what a selection worker gets (mmcli.parallel)

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SETS = ("sample", "digits", "arabic_commands", "speech_commands_mini", "long_utterances",
        "short_sentences", "photos", "faces")


class _Captured(Exception):
    pass


def problem_of(fused: Path):
    """The selection problem ``mmcli train`` builds for ``fused`` (its model: auto)."""
    from mmcli.models import select as sel
    from mmcli.stages.train import train

    got = {}

    def capture(problem, *args, **kwargs):
        got["problem"] = problem
        raise _Captured

    saved, sel.select_model = sel.select_model, capture
    try:
        with tempfile.TemporaryDirectory() as tmp:
            train(fused, Path(tmp) / "model")
    except _Captured:
        pass
    finally:
        sel.select_model = saved
    return got["problem"]


def measure(name: str, fused: Path, fractions: list[float]) -> list[dict]:
    import dataclasses

    from mmcli.models import select as sel

    problem = problem_of(fused)
    runs = [r for r in sel._runs(problem, None, None) if r["skip"] is None]
    n_blocks = len(problem.blocks) if problem.blocks else 1
    first = runs[0]
    if n_blocks > 1:
        runs += [{**first, "keep": [k for k in range(n_blocks) if k != drop]}
                 for drop in range(n_blocks)]
    rows = []
    tr, te = problem.folds[0]
    warm = dataclasses.replace(problem, folds=[(tr[: min(len(tr), 60)], te)])
    for model in dict.fromkeys(r["model"] for r in runs):  # imports are not a fit's cost
        run = next(r for r in runs if r["model"] == model)
        sel._fit_score(warm, model, run["params"], 0, run.get("keep"))
    for frac in [1.0, *fractions]:
        part = tr[: max(int(len(tr) * frac), 20)]
        sub = dataclasses.replace(problem, folds=[(part, te)])
        for run in runs:
            score, seconds, error = sel._fit_score(sub, run["model"], run["params"], 0,
                                                   run.get("keep"))
            rows.append({"set": name, "fraction": frac, "model": run["model"],
                         "params": sel._plain(run["params"]), "keep": run.get("keep"),
                         "rows": len(part), "features": sel.kept_features(sub, run.get("keep")),
                         "classes": problem.n_classes, "blocks": n_blocks,
                         "seconds": round(seconds, 3), "error": error,
                         "estimate": round(sel.fit_cost(sub, run), 3)})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["Fold fits of model selection on one core (one thread, one process): measured seconds "
             "against the cost model's estimate (mmcli.models.select.estimate). Measured on the "
             "2-core benchmark machine while another agent's benchmarks ran on the other core.",
             "",
             "| set | rows | model | params | features | measured s | estimated s | ratio |",
             "|---|---:|---|---|---:|---:|---:|---:|"]
    for r in rows:
        params = json.dumps(r["params"], sort_keys=True)
        if r["keep"] is not None:
            params += f" keep {r['keep']}"
        ratio = r["estimate"] / r["seconds"] if r["seconds"] > 0 else float("nan")
        lines.append(f"| {r['set']} | {r['rows']} | {r['model']} | {params} | "
                     f"{r['features']} | {r['seconds']:.2f} | {r['estimate']:.2f} | "
                     f"{ratio:.2f} |")
    logs = np.log([r["estimate"] / r["seconds"] for r in rows if r["seconds"] > 0.05])
    per_set = {}
    for r in rows:
        if r["fraction"] == 1.0:
            s = per_set.setdefault(r["set"], [0.0, 0.0])
            s[0] += r["seconds"]
            s[1] += r["estimate"]
    lines += ["", f"{len(rows)} fits; estimate / measured for fits over 0.05 s: geometric mean "
              f"{np.exp(logs.mean()):.2f}, middle 80% {np.exp(np.percentile(logs, 10)):.2f}"
              f"-{np.exp(np.percentile(logs, 90)):.2f}, range {np.exp(logs.min()):.2f}-"
              f"{np.exp(logs.max()):.2f}.", "",
              "| set | one fold of every setting, measured s | estimated s |", "|---|---:|---:|"]
    lines += [f"| {k} | {v[0]:.1f} | {v[1]:.1f} |" for k, v in per_set.items()]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default=None, help="bench/selection.py's --work directory")
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--fused", action="append", default=[], help="NAME=FUSED_DIR")
    parser.add_argument("--fractions", default="0.25",
                        help="also fit on these fractions of the fold's train rows")
    parser.add_argument("--from-json", action="store_true")
    args = parser.parse_args()
    out = RESULTS / "select_cost.json"
    if args.from_json:
        rows = json.loads(out.read_text())
        from mmcli.models.select import estimate

        for r in rows:  # the estimate of the current cost model
            r["estimate"] = round(estimate(r["model"], r["params"], r["rows"], r["features"],
                                           r["classes"]), 3)
    else:
        targets = [(s, Path(args.work) / s / "fused") for s in args.sets.split(",")
                   if args.work] + [tuple(f.split("=", 1)) for f in args.fused]
        fractions = [float(f) for f in args.fractions.split(",") if f]
        rows = []
        for name, fused in targets:
            t0 = time.perf_counter()
            rows += measure(name, Path(fused), fractions)
            print(f"# {name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
        RESULTS.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(rows, indent=0) + "\n", encoding="utf-8")
    text = table(rows)
    (RESULTS / "select_cost.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
