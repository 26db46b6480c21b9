"""How many test items eval's noise curves need: curves on seeded subsamples against the curves
on the whole test split, each judged by the other's bootstrap intervals.

For each built chain (a folder holding ``pre``, ``feat`` and ``model`` stage directories, as
``bench/perf.py chain`` or ``make demo`` leave them) the noise curves are computed on every
test item and on seeded subsamples of N items (``eval.noise_max_items: N``, the same code eval
runs, with ``eval.bootstrap`` resamples), and per N the table says how many curve points
(every modality, perturbation and severity, the clean point included) of the subsample fall
inside the whole split's 95% interval, how many of the whole split's fall inside the
subsample's, the largest gap, and the seconds each computation took (workers on all cores).

    python bench/noise_budget.py CHAIN_DIR [CHAIN_DIR...] [-N 100,200,300] [--seeds 0,1,2]
        [--out NAME]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def curves(chain: Path, max_items: int, resamples: int, seed: int) -> tuple[dict, float]:
    from mmcli.config import EvalConfig
    from mmcli.fitted import FittedChain
    from mmcli.report.robustness import noise_robustness

    config = EvalConfig(seed=seed)
    fitted = FittedChain.load(chain / "model")
    start = time.perf_counter()
    noise = noise_robustness(fitted, chain / "pre", config.noise_levels, config.seed,
                             max_items=max_items, feat_path=chain / "feat",
                             bootstrap=resamples)
    return noise, time.perf_counter() - start


def compare(full: dict, sub: dict) -> dict:
    """Points of ``sub`` inside ``full``'s intervals and the other way round, largest gap."""
    inside = back = total = 0
    gap = 0.0
    for name, f in full.items():
        s = sub[name]
        for a, b, (flo, fhi), (slo, shi) in zip(f["accuracy"], s["accuracy"],
                                                 f["ci"]["accuracy"], s["ci"]["accuracy"]):
            total += 1
            inside += flo <= b <= fhi
            back += slo <= a <= shi
            gap = max(gap, abs(a - b))
    return {"points": total, "sub_in_full": inside, "full_in_sub": back, "max_gap": gap}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chains", nargs="+", type=Path)
    parser.add_argument("-N", default="100,200,300", help="subsample sizes, comma-separated")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--seeds", default="0", help="eval.seed values (subsample, noise, "
                        "bootstrap), comma-separated: one comparison each")
    parser.add_argument("--out", default="noise_budget")
    args = parser.parse_args()
    sizes = [int(v) for v in args.N.split(",")]
    rows, lines = [], ["| chain | seed | test items | N | points | subsample in full's "
                       "interval | full in subsample's interval | largest gap | seconds (N / "
                       "all) |", "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for chain in args.chains:
        for seed in (int(v) for v in args.seeds.split(",")):
            full, t_full = curves(chain, 0, args.bootstrap, seed)
            n_test = next(iter(full.values()))["n"]
            for n in sizes:
                if n >= n_test:
                    continue
                sub, t_sub = curves(chain, n, args.bootstrap, seed)
                row = {"chain": str(chain), "seed": seed, "test_items": n_test, "N": n,
                       **compare(full, sub), "seconds_N": t_sub, "seconds_all": t_full}
                rows.append(row)
                lines.append(f"| {chain} | {seed} | {n_test} | {n} | {row['points']} | "
                             f"{row['sub_in_full']} | {row['full_in_sub']} | "
                             f"{row['max_gap']:.3f} | {t_sub:.1f} / {t_full:.1f} |")
                print(lines[-1], flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (RESULTS / f"{args.out}.json").write_text(json.dumps(rows, indent=1) + "\n",
                                              encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
