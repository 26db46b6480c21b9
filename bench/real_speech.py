"""The pipeline on real recorded speech: wall time, peak memory and test accuracy per stage.

Runs every stage as a real `mmcli` subprocess on the speech sets in ../shared/data (when
present) and prints a Markdown table; writes it to bench/results/real_speech.md.

    python bench/real_speech.py [--data ../shared/data] [--work runs/bench/speech]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETS = ("arabic_speech_commands", "speech_commands_mini")


def run(args: list[str]) -> tuple[float, float]:
    """Run one mmcli command; return (wall seconds, peak RSS of that child in MB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mmcli", *args, "-q"], check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, max(after, before) / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--work", default=str(ROOT / "runs" / "bench" / "speech"))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "real_speech.md"))
    args = parser.parse_args()
    data, work = Path(args.data), Path(args.work)
    lines = ["| data set | items | stage | wall s | items/s | test accuracy | test macro F1 |",
             "|---|---:|---|---:|---:|---:|---:|"]
    for name in SETS:
        manifest = data / name / "manifest.csv"
        if not manifest.exists():
            print(f"skipping {name}: {manifest} not found", file=sys.stderr)
            continue
        w = work / name
        n = sum(1 for _ in open(manifest, encoding="utf-8")) - 1
        steps = [("preprocess", ["preprocess", str(manifest), "-o", str(w / "pre")]),
                 ("extract", ["extract", str(w / "pre"), "-o", str(w / "feat")]),
                 ("fuse", ["fuse", str(w / "feat"), "-o", str(w / "fused")])]
        for stage, cmd in steps:
            wall, _ = run(cmd)
            lines.append(f"| {name} | {n} | {stage} | {wall:.2f} | {n / wall:.0f} | | |")
        for model in ("logreg", "mlp"):
            wall, _ = run(["train", str(w / "fused"), "-o", str(w / f"model-{model}"),
                           "--model", model])
            run(["eval", str(w / f"model-{model}"), str(w / "fused"), "-o",
                 str(w / f"eval-{model}")])
            m = json.loads((w / f"eval-{model}" / "metrics.json").read_text())["test"]
            lines.append(f"| {name} | {n} | train {model} | {wall:.2f} | | "
                         f"{m['accuracy']:.3f} | {m['macro_f1']:.3f} |")
    table = "\n".join(lines) + "\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(table, encoding="utf-8")
    sys.stdout.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
