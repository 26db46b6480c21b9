"""Which model should be the default? Train every model on the same fused features.

For each dataset (the sample data, and a harder generated set: four imbalanced classes whose
modalities are each noisy and often misleading, see ``mmcli.testing.dummies.make_hard_dataset``)
and each seed (a seed changes the train/val/test split), runs preprocess, extract and a concat
fuse once, then train (default parameters, CPU, one thread) and eval for every registered
model. The encoder models (``+enc`` rows: ``encoder: auto``) also train on a second extraction
that keeps structured rows: ``pixels`` (32 x 32 RGB) for a CNN, ``frames`` for a GRU and
``tokens`` for a Transformer. Writes a Markdown table of test accuracy, test macro-F1 (mean
and standard deviation over the seeds) and train time to bench/results/models_comparison.md.

    python bench/models_comparison.py [--seeds 0 1 2] [--work DIR] [--models NAME ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

from mmcli.config import EvalConfig, ExtractConfig, PreprocessConfig, TrainConfig
from mmcli.models import MODELS
from mmcli.stages import evaluate, extract, fuse, preprocess, train
from mmcli.testing.dummies import make_hard_dataset

ROOT = Path(__file__).resolve().parent.parent
#: the features each row trains on: the default extraction, or structured rows for encoders
FEATURES = {
    "default": ExtractConfig(),
    "structured": ExtractConfig(image=["pixels"], audio=["frames"], text=["tokens"],
                                params={"pixels": {"size": 32}}),
}
#: rows beyond the registered models (default parameters, default features):
#: label -> (model, params, features)
ENCODER_ROWS = {
    "late_repr+enc (default features: GRU on frames)": ("late_repr", {"encoder": "auto"},
                                                        "default"),
    "late_repr+enc (CNN, GRU, Transformer)": ("late_repr", {"encoder": "auto"}, "structured"),
    "gmu+enc (CNN, GRU, Transformer)": ("gmu", {"encoder": "auto"}, "structured"),
}


def rows_to_run(names: list[str]) -> dict:
    rows = {}
    for name in names:
        if name in ENCODER_ROWS:
            rows[name] = ENCODER_ROWS[name]
        elif name == "enc":  # every encoder row
            rows.update(ENCODER_ROWS)
        else:
            rows[name] = (name, {}, "default")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--work", default=str(ROOT / "runs/bench/models"))
    parser.add_argument("--models", nargs="+", default=[*MODELS.names(), "enc"],
                        help="model names, labels of encoder rows, or enc (every encoder row)")
    parser.add_argument("--out", default=str(ROOT / "bench/results/models_comparison.md"))
    args = parser.parse_args()
    import torch
    from threadpoolctl import threadpool_limits

    # one thread everywhere: train times compare the models, not how busy the machine is
    torch.set_num_threads(1)
    threadpool_limits(1)
    work = Path(args.work)
    datasets = {"sample": ROOT / "sample_data/manifest.csv",
                "hard": make_hard_dataset(work / "hard_data", n=400, seed=0)}
    rows = rows_to_run(args.models)
    results: dict = {}
    for dname, manifest in datasets.items():
        for seed in args.seeds:
            base = work / dname / f"seed{seed}"
            preprocess(manifest, base / "pre", PreprocessConfig(seed=seed))
            for features in sorted({f for _, _, f in rows.values()}):
                config = dataclasses.replace(FEATURES[features], seed=seed)
                extract(base / "pre", base / f"feat_{features}", config)
                fuse(base / f"feat_{features}", base / f"fused_{features}")
            for k, (label, (model, params, features)) in enumerate(rows.items()):
                fused, out = base / f"fused_{features}", base / f"row{k}"
                t0 = time.perf_counter()
                train(fused, out / "model",
                      TrainConfig(model=model, params=params, seed=seed, device="cpu"))
                seconds = time.perf_counter() - t0
                m = evaluate(out / "model", fused, out / "eval", EvalConfig(robustness=False))
                results.setdefault((dname, label), []).append(
                    (m["test"]["accuracy"], m["test"]["macro_f1"], seconds, m["test"]["n"]))
                print(f"{dname} seed {seed} {label}: acc {m['test']['accuracy']:.3f} "
                      f"macro-F1 {m['test']['macro_f1']:.3f} {seconds:.1f}s", file=sys.stderr)
    lines = render(results, args.seeds)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


def render(results: dict, seeds: list[int]) -> list[str]:
    def ms(values):
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.3f} ± {sd:.3f}"

    lines = [f"Test split, concat fusion, default parameters, CPU (one thread); mean ± sd "
             f"over seeds {', '.join(map(str, seeds))} (each seed a different split).", ""]
    for dname in dict.fromkeys(d for d, _ in results):
        rows = sorted(((m, r) for (d, m), r in results.items() if d == dname),
                      key=lambda mr: -statistics.mean(x[1] for x in mr[1]))
        n = ", ".join(str(x[3]) for x in rows[0][1])
        lines += [f"### {dname} (test n = {n} per seed)", "",
                  "| model | accuracy | macro F1 | train seconds |", "|---|---:|---:|---:|"]
        for model, r in rows:
            lines.append(f"| {model} | {ms([x[0] for x in r])} | {ms([x[1] for x in r])} | "
                         f"{statistics.mean(x[2] for x in r):.2f} |")
        lines.append("")
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
