"""Does fusion beat every single modality? Train on each modality alone and on all of them.

Runs preprocess and extract once, then fuse -> train -> eval for every single modality and for
all modalities with each fusion method and model, and prints a Markdown table of test-split
accuracy and macro-F1. Writes the table to bench/results/modality_comparison.md.

    python bench/modality_comparison.py [MANIFEST] [--work DIR] [--seed N]

Default manifest: sample_data/manifest.csv.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from mmcli.config import EvalConfig, FuseConfig, TrainConfig
from mmcli.stages import evaluate, extract, fuse, preprocess, train

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", nargs="?", default=str(ROOT / "sample_data/manifest.csv"))
    parser.add_argument("--work", default=str(ROOT / "runs/bench/modalities"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "bench/results/modality_comparison.md"))
    args = parser.parse_args()
    work = Path(args.work)
    from mmcli.config import PreprocessConfig

    preprocess(Path(args.manifest), work / "pre", PreprocessConfig(seed=args.seed))
    extract(work / "pre", work / "feat")
    import json

    blocks = json.loads((work / "feat/blocks.json").read_text())
    modalities = [b["column"] for b in blocks]
    runs = [([m], "concat", model) for model in ("logreg", "mlp") for m in modalities]
    runs += [(modalities, "concat", "auto")]
    runs += [(modalities, method, model) for model in ("logreg", "mlp")
             for method in ("concat", "sum", "product", "tensor")]
    rows = []
    for mods, method, model in runs:
        name = f"{'+'.join(mods)}-{method}-{model}"
        t0 = time.perf_counter()
        fuse(work / "feat", work / name / "fused", FuseConfig(method=method, modalities=mods,
                                                             seed=args.seed))
        train(work / name / "fused", work / name / "model", TrainConfig(model=model,
                                                                        seed=args.seed))
        metrics = evaluate(work / name / "model", work / name / "fused", work / name / "eval",
                           EvalConfig(robustness=False))
        m = metrics["test"]
        rows.append((", ".join(mods) if len(mods) == 1 else "all", method if len(mods) > 1
                     else "-", model, m["accuracy"], m["macro_f1"], m["n"],
                     time.perf_counter() - t0))
    lines = [f"Test split of `{Path(args.manifest).name}` (seed {args.seed}).", "",
             "| modalities | fusion | model | accuracy | macro F1 | n | seconds |",
             "|---|---|---|---:|---:|---:|---:|"]
    lines += [f"| {a} | {b} | {c} | {d:.3f} | {e:.3f} | {f} | {g:.1f} |"
              for a, b, c, d, e, f, g in rows]
    table = "\n".join(lines) + "\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(table, encoding="utf-8")
    sys.stdout.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
