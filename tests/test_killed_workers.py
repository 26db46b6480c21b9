"""A stage killed with SIGKILL (``timeout -s KILL``, the OOM killer) leaves no process behind:
its fork server, worker processes and Dask workers are gone within seconds, whatever they were
doing. Before, the local pool's workers waited on their task queue forever and kept the fork
server (and multiprocessing's resource tracker) alive with them."""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mmcli.testing.dummies import make_dataset

psutil = pytest.importorskip("psutil")  # installed with dask.distributed

#: rows of the manifest; they repeat a few media files, so it is cheap to write, and the stages
#: still have chunks to do after their first progress line
ROWS = 600


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("killed")
    with open(make_dataset(root, n=24), encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    path = root / "big.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows({**rows[k % len(rows)], "id": f"row{k:05d}"} for k in range(ROWS))
    return path


@pytest.fixture(scope="module")
def pre(manifest) -> Path:
    from mmcli.config import PreprocessConfig
    from mmcli.stages import preprocess

    preprocess(manifest, manifest.parent / "pre", PreprocessConfig(jobs=1))
    return manifest.parent / "pre"


def kill_mid_run(args: list, stage: str) -> None:
    """Run ``mmcli ARGS --jobs 2``, SIGKILL it once its workers have done some of the stage's
    chunks, and check that every process it started is gone 10 s later."""
    cmd = [sys.executable, "-m", "mmcli", *map(str, args), "--jobs", "2"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "NO_COLOR": "1"})
    watchdog = threading.Timer(120, proc.kill)
    watchdog.start()
    progress = re.compile(rf"^{stage}: \d+/\d+ ")  # the parallel phase, not extract's fit
    try:
        while (line := proc.stderr.readline()) and not progress.match(line):
            pass
        tree = psutil.Process(proc.pid).children(recursive=True)
    finally:
        watchdog.cancel()
    assert line and "(100%)" not in line, f"not killed mid-run: {line!r}"
    assert len(tree) >= 3, tree  # the resource tracker and two workers at least
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stderr.close()
    deadline = time.monotonic() + 10
    while (alive := [p for p in tree if _alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    for p in alive:  # leave nothing behind, whatever the outcome
        p.kill()
    assert not alive, [" ".join(p.cmdline())[:120] for p in alive]


def _alive(p) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_killed_preprocess_leaves_no_process(manifest):
    kill_mid_run(["preprocess", manifest, "-o", manifest.parent / "out-pre"], "preprocess")


def test_killed_extract_leaves_no_process(pre):
    kill_mid_run(["extract", pre, "-o", pre.parent / "out-feat"], "extract")


def test_killed_preprocess_on_a_local_dask_cluster_leaves_no_process(manifest):
    pytest.importorskip("distributed")
    kill_mid_run(["preprocess", manifest, "-o", manifest.parent / "out-dask", "--executor",
                  "dask"], "preprocess")
