"""Parquet against CSV manifests: read, validate and split 1,000,000 rows.

    python bench/parquet.py [-n 1000000] [--media 300] [--work runs/bench/parquet] [--stage]

Writes one manifest of N rows (id, image, audio, text, value, label; the media cells point at a
few hundred real generated PNG and WAV files) as CSV and as Parquet (row groups of 65,536),
then, in a fresh process per format and run (--repeat, alternating; each phase's fastest
run is reported), does what preprocess does before decoding any media:
read the manifest, detect the column kinds, check the ids, assign the splits, and compute the
input record (the manifest's sha256 and a stat of every media path: what `mmcli run` compares).
Each phase is timed in CPU seconds (the process's, all threads: what other processes' load
on a shared machine does not inflate) and wall seconds; the peak RSS is the child process's.
With --stage the child runs the whole preprocess stage instead (media decoded too, one
worker). Prints a Markdown table and writes it to bench/results/parquet.md (--out to name
another file). Data are generated under --work, never shipped.
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
WORDS = ("amber ash bright cold dust ember field fire frog glow grass green ice lake leaf moss "
         "night rain red river sand sea sky smoke snow stone sun tide warm wave").split()


def make_data(work: Path, n: int, media: int) -> tuple[Path, Path]:
    from mmcli.testing.dummies import write_png, write_wav

    csv_path, parquet_path = work / "manifest.csv", work / "manifest.parquet"
    if csv_path.exists() and parquet_path.exists() and \
            json.loads((work / "size.json").read_text()) == [n, media]:
        return csv_path, parquet_path
    rng = np.random.default_rng(0)
    (work / "media").mkdir(parents=True, exist_ok=True)
    for k in range(media):
        write_png(work / "media" / f"m{k:04d}.png", (k % 256, 80, 160), rng=rng)
        write_wav(work / "media" / f"m{k:04d}.wav", 200.0 + k, rng=rng)
    pick = rng.integers(0, media, n)
    words = rng.integers(0, len(WORDS), (n, 6))
    columns = {
        "id": [f"s{k:07d}" for k in range(n)],
        "image": [f"media/m{k:04d}.png" for k in pick],
        "audio": [f"media/m{k:04d}.wav" for k in pick],
        "text": [" ".join(WORDS[w] for w in row) for row in words],
        "value": np.round(rng.normal(size=n), 6).tolist(),
        "label": [("red", "green", "blue")[k % 3] for k in pick],
    }
    with open(csv_path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(list(columns))
        writer.writerows(zip(*columns.values()))
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(columns), parquet_path, row_group_size=65_536)
    (work / "size.json").write_text(json.dumps([n, media]))
    return csv_path, parquet_path


class Phases:
    """Wall and CPU seconds of named phases (CPU: this process's, all threads; on a shared
    machine it is the figure that other processes' load does not inflate)."""

    def __init__(self):
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    def __call__(self, name: str, fn, *args):
        t, c = time.perf_counter(), time.process_time()
        out = fn(*args)
        self.wall[name] = time.perf_counter() - t
        self.cpu[name] = time.process_time() - c
        return out


def child(path: str, stage: bool) -> None:
    """One format, in a fresh process: phase timings and peak RSS as one JSON line."""
    from mmcli.config import PreprocessConfig
    from mmcli.manifest import assign_splits, read_manifest
    from mmcli.stages.preprocess import feature_columns, manifest_inputs, preprocess

    timed = Phases()
    if stage:
        out = Path(path).parent / f"out-{Path(path).suffix[1:]}"
        shutil.rmtree(out, ignore_errors=True)  # nothing to reuse: every item is decoded
        summary = timed("preprocess", preprocess, Path(path), out, PreprocessConfig(jobs=1))
        rows, kinds, train = summary["rows"], summary["columns"], summary["splits"]["train"]
    else:
        m = timed("read", read_manifest, Path(path))
        kinds = timed("kinds", feature_columns, m, PreprocessConfig())
        splits = timed("ids+split", lambda: assign_splits(
            m, m.ids(), m.stripped("label"), PreprocessConfig().split, 0))
        timed("input record", manifest_inputs, m, kinds)
        rows, train = len(m), splits.count("train")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"wall": timed.wall, "cpu": timed.cpu, "rss_mb": rss, "rows": rows,
                      "kinds": kinds, "train": train}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1_000_000)
    parser.add_argument("--media", type=int, default=300)
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "bench" / "parquet")
    parser.add_argument("--repeat", type=int, default=2,
                        help="runs per format; each phase's fastest is reported")
    parser.add_argument("--stage", action="store_true",
                        help="time the whole preprocess stage (media decoded) instead")
    parser.add_argument("--out", default="parquet.md", help="file name under bench/results")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.stage)
        return 0
    csv_path, parquet_path = make_data(args.work, args.n, args.media)
    results: dict[str, dict] = {}
    for _ in range(args.repeat):  # alternating, so that a busy spell hits both formats
        for name, path in (("CSV", csv_path), ("Parquet", parquet_path)):
            out = subprocess.run([sys.executable, __file__, "--child", str(path)]
                                 + ["--stage"] * args.stage, check=True,
                                 capture_output=True, text=True, cwd=ROOT).stdout
            r = json.loads(out.splitlines()[-1])
            if name in results:  # the fastest of the repeats, phase by phase
                for key in ("wall", "cpu"):
                    r[key] = {k: min(v, results[name][key][k]) for k, v in r[key].items()}
                r["rss_mb"] = max(r["rss_mb"], results[name]["rss_mb"])
            results[name] = r
    assert results["CSV"]["kinds"] == results["Parquet"]["kinds"], results
    assert results["CSV"]["train"] == results["Parquet"]["train"]
    phases = list(results["CSV"]["cpu"])
    lines = ["| manifest | file size | " + " | ".join(f"{p} (CPU s)" for p in phases)
             + " | total (CPU s) | total (wall s) | peak RSS (MB) |",
             "|---" * (len(phases) + 5) + "|"]
    for name, path in (("CSV", csv_path), ("Parquet", parquet_path)):
        r = results[name]
        lines.append(f"| {name} | {path.stat().st_size / 1e6:.0f} MB | "
                     + " | ".join(f"{r['cpu'][p]:.2f}" for p in phases)
                     + f" | {sum(r['cpu'].values()):.2f} | {sum(r['wall'].values()):.2f} | "
                     f"{r['rss_mb']:.0f} |")
    table = "\n".join(lines)
    note = (f"\n\n{args.n:,} rows, {args.media} media files of each kind, fastest of "
            f"{args.repeat} runs per phase; kinds "
            f"{results['CSV']['kinds']}; {results['CSV']['train']:,} rows in train.\n")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / args.out).write_text(table + note)
    print(table + note)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
