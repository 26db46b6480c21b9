"""A killed eval, run again: its time against a full eval, and its output against the full one's.

``mmcli eval MODEL FUSED`` runs once in full (timed), then again into another directory, killed
(SIGKILL of its process group) once its progress shows ``--at`` of the robustness points done,
or, with ``--by time``, once ``--at`` of the full run's wall time has passed; then once more
(timed): the rerun resumes the journaled points. Printed: both times, their ratio, and whether
the two outputs are byte-identical. ``--repeat`` alternates the full and the killed-then-rerun
measurements and reports medians.

    python bench/eval_resume.py MODEL_DIR FUSED_DIR [--work DIR] [--at 0.6] [--by points|time]
        [--repeat 3]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path


def mmcli(*args: str) -> list[str]:
    return [sys.executable, "-m", "mmcli", *args]


def hashes(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def killed_at(cmd: list[str], at: float, seconds: float | None = None) -> int:
    """Run ``cmd`` and SIGKILL its process group once ``at`` of the robustness points are
    done, or after ``seconds``; returns how many points were journaled."""
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL if seconds else subprocess.PIPE,
                            text=True, env={**os.environ, "NO_COLOR": "1"},
                            start_new_session=True)
    if seconds is not None:
        time.sleep(seconds)
    else:
        for line in proc.stderr:
            if line.startswith("eval: robustness: "):
                done, total = (int(v) for v in line.split()[2].split("/"))
                if done >= at * total:
                    break
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    journals = list(Path(cmd[-1]).parent.glob(f".{Path(cmd[-1]).name}.tmp-*/.journal.jsonl"))
    return sum(1 for _ in open(journals[0])) - 1 if journals else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("fused", type=Path)
    parser.add_argument("--work", type=Path, default=Path("runs/bench/eval_resume"))
    parser.add_argument("--at", type=float, default=0.6)
    parser.add_argument("--by", choices=["points", "time"], default="points")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    full_out, out = args.work / "full", args.work / "resumed"
    fulls, reruns = [], []
    for _ in range(args.repeat):
        for d in (full_out, out):
            shutil.rmtree(d, ignore_errors=True)
        fulls.append(timed(mmcli("eval", str(args.model), str(args.fused), "-o", str(full_out))))
        cmd = mmcli("eval", str(args.model), str(args.fused), "-o", str(out))
        points = killed_at(cmd, args.at, args.at * fulls[-1] if args.by == "time" else None)
        reruns.append(timed(cmd))
        same = hashes(out) == hashes(full_out)
        print(f"full {fulls[-1]:.1f} s; killed after {points} points; rerun {reruns[-1]:.1f} s "
              f"({reruns[-1] / fulls[-1]:.2f} of full); byte-identical: {same}", flush=True)
    full, rerun = statistics.median(fulls), statistics.median(reruns)
    print(f"median of {args.repeat}: full {full:.1f} s, rerun {rerun:.1f} s, "
          f"ratio {statistics.median(r / f for r, f in zip(reruns, fulls)):.2f}")


if __name__ == "__main__":
    main()
