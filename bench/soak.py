"""Soak test: kill -9 the six-command chain at random moments, rerun it, check nothing is lost.

    python bench/soak.py                       # 50 runs on sample_data, seed 0, 3 overlaps
    python bench/soak.py --runs 20 --seed 1 --overlaps 2 --work /tmp/soak

First the chain (preprocess, extract, fuse, train --model logreg, eval, predict) runs once,
uninterrupted, into WORK/w: the reference, hashed file by file, and the duration of each stage.
Then each run (choices drawn from --seed):

1. WORK/w gets the reference outputs of the stages before a randomly drawn stage (a fresh
   run), or of every stage (a rerun over an existing output), half and half;
2. the drawn stage is started and its main process killed with SIGKILL (as the OOM killer or
   `timeout -s KILL` do: its workers get no signal) at a random moment of its reference
   duration; its output directory must then be absent, or identical to the reference (the
   previous output, or a new one completed before the kill), and 10 s after the kill no process
   it started may be alive;
3. that stage and the later ones run again, and every file of every stage directory must be
   byte-identical to the reference (sha256), with no `.NAME.tmp-*` directory, no `.NAME.lock`
   file (held or not) and no process of the run left.

Before the runs, --overlaps times, two `mmcli run PIPELINE.yaml` of the same pipeline (an
overlapping cron) start together on an empty work directory: both must end with exit 0 or 4,
one of them 0, and the outputs must equal those of an uninterrupted `mmcli run`, with nothing
left over.

Processes are told apart by an environment variable each command gets (workers inherit it),
so a leftover is found however it was reparented; leftovers are killed (by pid) after being
counted. The summary is printed and written to --report (default bench/results/soak.md)
after every run, so a soak cut short still reports; the exit status is 1 when any check
failed. Not a unit test: it takes about a minute per run
on a busy two-core machine.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
MMCLI = [sys.executable, "-m", "mmcli"]
#: the variable that marks every process of a soak command (inherited by its workers)
MARK = "MMCLI_SOAK_RUN"
STAGES = ("pre", "feat", "fused", "model", "eval", "pred")
#: seconds a killed stage's processes get to go
GRACE = 10.0


def chain(w: Path, manifest: Path, unlabeled: Path) -> list[list[str]]:
    """The six commands of the README, into ``w``; train with logreg (auto takes minutes)."""
    return [["preprocess", str(manifest), "-o", str(w / "pre")],
            ["extract", str(w / "pre"), "-o", str(w / "feat")],
            ["fuse", str(w / "feat"), "-o", str(w / "fused"), "--method", "concat"],
            ["train", str(w / "fused"), "-o", str(w / "model"), "--model", "logreg"],
            ["eval", str(w / "model"), str(w / "fused"), "-o", str(w / "eval")],
            ["predict", str(w / "model"), str(unlabeled), "-o", str(w / "pred")]]


def start(args: list[str], mark: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, MARK: mark, "NO_COLOR": "1"}
    with open(log, "w") as f:  # the child keeps its own descriptor
        return subprocess.Popen([*MMCLI, *args], stdout=f, stderr=subprocess.STDOUT, env=env,
                                cwd=ROOT, start_new_session=True)


def run(args: list[str], mark: str, log: Path) -> int:
    return start(args, mark, log).wait()


def hashes(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def tree_hashes(w: Path) -> dict[str, dict[str, str]]:
    return {s: hashes(w / s) if (w / s).is_dir() else {} for s in STAGES}


def marked(mark: str) -> list[psutil.Process]:
    """Live processes carrying ``mark`` (zombies are dead: left out)."""
    found = []
    for p in psutil.process_iter():
        try:
            if p.environ().get(MARK) == mark and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return found


def leftovers(mark: str, grace: float = GRACE) -> list[str]:
    """Processes of ``mark`` still alive after ``grace`` seconds; they are killed."""
    deadline = time.monotonic() + grace
    while (alive := marked(mark)) and time.monotonic() < deadline:
        time.sleep(0.2)
    names = []
    for p in alive:
        try:
            names.append(f"{p.pid} {' '.join(p.cmdline())[:90]}")
            p.kill()
        except psutil.NoSuchProcess:
            pass
    return names


def debris(w: Path) -> tuple[list[str], list[str], list[str]]:
    """Temporary directories, lock files and held locks under ``w``."""
    tmp = sorted(p.name for p in w.glob(".*.tmp-*"))
    locks = sorted(p.name for p in w.glob(".*.lock"))
    held = []
    for name in locks:
        try:
            with open(w / name) as f:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    held.append(name)
        except FileNotFoundError:  # removed meanwhile
            pass
    return tmp, locks, held


def reset(w: Path, ref: Path, stages: list[str]) -> None:
    shutil.rmtree(w, ignore_errors=True)
    w.mkdir(parents=True)
    for s in stages:
        shutil.copytree(ref / s, w / s)


def tail(log: Path, n: int = 3) -> str:
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    return " | ".join(lines[-n:])


def soak_run(k: int, rng: random.Random, cmds: list[list[str]], durations: list[float],
             reference: dict, w: Path, ref: Path, logs: Path, stats: Counter,
             problems: list[str]) -> str:
    stage = rng.randrange(len(STAGES))
    over = rng.random() < 0.5
    delay = rng.uniform(0, durations[stage])
    reset(w, ref, list(STAGES) if over else list(STAGES[:stage]))
    mark = f"{os.getpid()}-{k}"
    name = cmds[stage][0]
    stats[f"killed stage {name}"] += 1
    proc = start(cmds[stage], mark, logs / f"{k}-killed.log")
    try:
        proc.wait(timeout=delay)
        stats["finished before the kill"] += 1
        when = f"finished before {delay:.1f}s"
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        stats["killed mid-stage"] += 1
        when = f"killed at {delay:.1f}s"
    what = f"run {k}: {name} {when} ({'over an existing output' if over else 'fresh'})"
    left = leftovers(mark)
    if left:
        stats["runs with processes alive 10 s after the kill"] += 1
        problems.append(f"{what}: alive 10 s after the kill: {left}")
    out = w / STAGES[stage]
    state = ("absent" if not out.exists() else
             "identical to the reference" if hashes(out) == reference[STAGES[stage]] else
             "different")
    stats[f"output after the kill: {state}"] += 1
    if state == "different" or (over and state == "absent"):
        problems.append(f"{what}: output after the kill is {state}")
    if debris(w)[0]:
        stats["temporary directories left by the kill (removed by the rerun)"] += 1

    resumed = False
    for j in range(stage, len(cmds)):
        log = logs / f"{k}-rerun-{cmds[j][0]}.log"
        rc = run(cmds[j], mark, log)
        if rc != 0:
            stats["reruns failed"] += 1
            problems.append(f"{what}: rerun of {cmds[j][0]} exit {rc}: {tail(log)}")
            break
        if j == stage and re.search(r"[1-9]\d* chunks? resumed", log.read_text()):
            resumed = True
    stats["reruns resumed from a checkpoint"] += resumed
    same = tree_hashes(w) == reference
    stats["outputs identical to the reference" if same else "outputs different"] += 1
    if not same:
        bad = [s for s in STAGES if hashes(w / s) != reference[s]] if w.exists() else STAGES
        problems.append(f"{what}: outputs differ from the reference: {bad}")
    tmp, locks, held = debris(w)
    for label, found in (("temporary directories", tmp), ("lock files", locks),
                         ("held locks", held)):
        if found:
            stats[f"runs with {label} left after the rerun"] += 1
            problems.append(f"{what}: {label} left after the rerun: {found}")
    after = leftovers(mark)
    if after:
        stats["runs with processes left after the rerun"] += 1
        problems.append(f"{what}: processes left after the rerun: {after}")
    return (f"{what}: {state}, {len(left)} processes left; rerun "
            f"{'resumed, ' if resumed else ''}{'identical' if same else 'DIFFERENT'}")


def overlap(k: int, pipeline: Path, p: Path, reference: dict, logs: Path, stats: Counter,
            problems: list[str]) -> str:
    shutil.rmtree(p, ignore_errors=True)
    mark = f"{os.getpid()}-overlap-{k}"
    procs = [start(["run", str(pipeline)], mark, logs / f"overlap-{k}-{i}.log") for i in (0, 1)]
    codes = sorted(proc.wait() for proc in procs)
    stats[f"overlap exit codes {codes[0]} and {codes[1]}"] += 1
    what = f"overlap {k}: exit {codes}"
    if not set(codes) <= {0, 4} or 0 not in codes:
        problems.append(f"{what}: {[tail(logs / f'overlap-{k}-{i}.log') for i in (0, 1)]}")
    same = tree_hashes(p) == reference
    stats["overlaps with one complete output identical to the reference" if same
          else "overlaps with outputs different from the reference"] += 1
    if not same:
        problems.append(f"{what}: outputs differ from an uninterrupted `mmcli run`")
    tmp, locks, held = debris(p)
    if tmp or locks or held:
        stats["overlaps with temporary directories or locks left"] += 1
        problems.append(f"{what}: left {tmp + locks}")
    left = leftovers(mark)
    if left:
        stats["overlaps with processes left"] += 1
        problems.append(f"{what}: processes left: {left}")
    return f"{what}, {'identical' if same else 'DIFFERENT'}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="kill-and-rerun runs (50)")
    parser.add_argument("--overlaps", type=int, default=3,
                        help="pairs of overlapping `mmcli run` (3)")
    parser.add_argument("--seed", type=int, default=0, help="draws of stages and moments (0)")
    parser.add_argument("--manifest", type=Path, default=ROOT / "sample_data" / "manifest.csv")
    parser.add_argument("--unlabeled", type=Path,
                        default=ROOT / "sample_data" / "unlabeled.csv")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "bench" / "soak")
    parser.add_argument("--report", type=Path, default=ROOT / "bench" / "results" / "soak.md")
    args = parser.parse_args()

    work = args.work.resolve()
    w, ref, logs = work / "w", work / "ref", work / "logs"
    shutil.rmtree(work, ignore_errors=True)
    logs.mkdir(parents=True)
    cmds = chain(w, args.manifest.resolve(), args.unlabeled.resolve())
    stats: Counter = Counter()
    problems: list[str] = []
    started = time.monotonic()

    durations = []
    w.mkdir()
    for cmd in cmds:
        t0 = time.monotonic()
        if run(cmd, f"{os.getpid()}-reference", logs / f"reference-{cmd[0]}.log") != 0:
            print(f"the reference chain failed at {cmd[0]}: "
                  f"{tail(logs / f'reference-{cmd[0]}.log')}", file=sys.stderr)
            return 1
        durations.append(time.monotonic() - t0)
    reference = tree_hashes(w)
    shutil.copytree(w, ref)
    print("reference chain: " + ", ".join(f"{c[0]} {d:.1f}s" for c, d in zip(cmds, durations)),
          flush=True)

    def report(runs: int) -> str:
        minutes = (time.monotonic() - started) / 60
        lines = [f"# Soak test ({runs} runs, {args.overlaps} overlaps, seed {args.seed}, "
                 f"{minutes:.0f} min)", "",
                 f"`python bench/soak.py --runs {args.runs} --overlaps {args.overlaps} "
                 f"--seed {args.seed}` on {args.manifest.name}; reference chain: "
                 + ", ".join(f"{c[0]} {d:.1f}s" for c, d in zip(cmds, durations)), "",
                 "| count | what |", "|---|---|"]
        lines += [f"| {n} | {key} |" for key, n in sorted(stats.items())]
        lines += ["", f"Problems: {len(problems)}", *[f"- {p}" for p in problems]]
        text = "\n".join(lines) + "\n"
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(text)  # after every run: a soak cut short still reports
        return text

    if args.overlaps:
        pipeline = work / "pipeline.yaml"
        p = work / "p"
        pipeline.write_text(
            f"pipeline:\n  manifest: {args.manifest.resolve()}\n  workdir: {p}\n"
            f"  predict: {args.unlabeled.resolve()}\nseed: 0\nfuse:\n  method: concat\n"
            "train:\n  model: logreg\n")
        if run(["run", str(pipeline)], f"{os.getpid()}-overlap-ref",
               logs / "overlap-reference.log") != 0:
            print(f"the reference `mmcli run` failed: {tail(logs / 'overlap-reference.log')}",
                  file=sys.stderr)
            return 1
        run_reference = tree_hashes(p)
        for k in range(1, args.overlaps + 1):
            print(overlap(k, pipeline, p, run_reference, logs, stats, problems), flush=True)
            report(0)

    rng = random.Random(args.seed)
    for k in range(1, args.runs + 1):
        print(soak_run(k, rng, cmds, durations, reference, w, ref, logs, stats, problems),
              flush=True)
        report(k)
    print(report(args.runs))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
