"""Missing modalities on real speech: rows kept, test n and accuracy, per missingness pattern.

Builds ``bench/.cache/speech_transcripts/`` from the shared Arabic speech commands (900 clips,
10 keywords, 30 speakers, speaker-disjoint splits): the audio plus a ``transcript`` column that
imitates an imperfect recogniser (the keyword's English name 60% of the time, another keyword
otherwise, seeded). Then, like the 535-clip emotional speech set of issue 14 (5% empty
transcripts), 5% of the transcripts are emptied and 2% of the clips point to a file that does
not exist. Runs the six commands with the default config (a real ``python -m mmcli`` per
stage) with the mmcli of ``--code`` and reports what eval and predict saw.

    python bench/missing.py --code . --name after          # this checkout
    python bench/missing.py --code /tmp/old --name before  # another checkout, for comparison
    python bench/missing.py --name after --model logreg    # a named model on the same features

Results accumulate in bench/results/missing.json (one entry per --name) and missing.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from datasets import ARABIC_WORDS, CACHE, arabic_commands  # noqa: E402

RESULTS = ROOT / "bench" / "results"
SEED = 0


def build() -> Path:
    """The manifest with transcripts and gaps (built once, deterministic)."""
    out = CACHE / "speech_transcripts" / "manifest.csv"
    if out.exists():
        return out
    with open(arabic_commands(), newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    rng = np.random.default_rng(SEED)
    for row in rows:
        word = row["label"] if rng.random() < 0.6 else str(rng.choice(ARABIC_WORDS))
        row["transcript"] = f"the word {word}"
    n = len(rows)
    for k in rng.choice(n, round(0.05 * n), replace=False):
        rows[k]["transcript"] = ""
    for k in rng.choice(n, round(0.02 * n), replace=False):
        rows[k]["speech"] = str(out.parent / "lost" / Path(rows[k]["speech"]).name)
    columns = ["id", "speech", "transcript", "label", "split", "group"]
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, columns, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return out


def mmcli(code: Path, *args) -> None:
    env = {**os.environ, "PYTHONPATH": str(code)}
    subprocess.run([sys.executable, "-m", "mmcli", *map(str, args), "-q"], check=True, env=env,
                   cwd=code)


def measure(code: Path, manifest: Path, work: Path, model: str) -> dict:
    """The six commands (the first three only when ``work`` lacks their output); train,
    eval and predict into folders named after ``model``."""
    t0 = time.perf_counter()
    cfg = work / "config.yaml"
    work.mkdir(parents=True, exist_ok=True)
    # the row dropped for an empty transcript counted as a failure before: allow them all
    # the transcripts (ten phrases) would be detected as categorical: they are text
    cfg.write_text("preprocess: {max_failed_fraction: 0.5, group: group, "
                   "columns: {transcript: text}}\neval: {bootstrap: 0}\n")
    for stage, src, out in (("preprocess", manifest, "pre"), ("extract", work / "pre", "feat"),
                            ("fuse", work / "feat", "fused")):
        if not (work / out / "meta.json").exists():
            mmcli(code, stage, src, "-o", work / out, "-c", cfg)
    m, e, p = (f"{name}-{model}" for name in ("model", "eval", "pred"))
    mmcli(code, "train", work / "fused", "-o", work / m, "--model", model)
    mmcli(code, "eval", work / m, work / "fused", "-o", work / e, "-c", cfg)
    mmcli(code, "predict", work / m, manifest, "-o", work / p)
    pre = json.loads((work / "pre" / "meta.json").read_text())["summary"]
    test = json.loads((work / e / "metrics.json").read_text())["test"]
    chosen = json.loads((work / m / "meta.json").read_text())["summary"]["model"]
    with open(work / p / "predictions.csv", newline="", encoding="utf-8") as f:
        predicted = sum(1 for _ in csv.DictReader(f))
    with open(manifest, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return {"rows": pre["rows"], "kept": pre["kept"], "left_out": pre["failed"],
            "labelled_test_rows": sum(r["split"] == "test" for r in rows),
            "model": chosen if model != "auto" else f"{chosen} (auto)",
            "test_n": test["n"], "test_accuracy": test["accuracy"],
            "test_macro_f1": test["macro_f1"], "predicted": predicted,
            "patterns": test.get("missing"), "seconds": round(time.perf_counter() - t0)}


def write_markdown(results: dict) -> str:
    lines = ["| code | rows | kept | left out | labelled test rows | test n | model | "
             "test accuracy | test macro F1 | predict rows |",
             "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['rows']} | {r['kept']} | {r['left_out']} | "
                     f"{r['labelled_test_rows']} | {r['test_n']} | {r['model']} | "
                     f"{r['test_accuracy']:.3f} | {r['test_macro_f1']:.3f} | {r['predicted']} |")
    for name, r in results.items():
        if r.get("patterns"):
            lines += ["", f"Per missingness pattern ({name}, test split, real missing cells):",
                      "", "| pattern | n | accuracy | macro F1 |", "|---|---:|---:|---:|"]
            lines += [f"| {p['pattern']} | {p['n']} | {p['accuracy']:.3f} | "
                      f"{p['macro_f1']:.3f} |" for p in r["patterns"]]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", default=str(ROOT), help="checkout whose mmcli runs")
    parser.add_argument("--name", default="after", help="name of this result")
    parser.add_argument("--model", default="auto", help="train --model (default: auto)")
    parser.add_argument("--work", default=str(ROOT / "runs" / "bench" / "missing"))
    args = parser.parse_args()
    manifest = build()
    result = measure(Path(args.code).resolve(), manifest, Path(args.work) / args.name,
                     args.model)
    path = RESULTS / "missing.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    results[f"{args.name}, {args.model}"] = result
    path.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    (RESULTS / "missing.md").write_text(write_markdown(results))
    print(write_markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
