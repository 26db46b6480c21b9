"""examples/Makefile works with make -j2 from a clean directory; a second make does nothing;
touching an input whose content is unchanged re-runs that stage only."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmcli.testing.dummies import make_dataset

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
def test_example_makefile_parallel_then_nothing(tmp_path):
    data = tmp_path / "data"
    make_dataset(data, n=24)
    make_dataset(data, n=6, with_label=False, name="unlabeled", id_prefix="new")
    config = tmp_path / "config.yaml"
    config.write_text("preprocess: {jobs: 1}\nextract: {jobs: 1}\n")
    args = ["make", "-C", str(ROOT / "examples"), f"MMCLI={sys.executable} -m mmcli",
            f"DATA={data}", f"RUNS={tmp_path / 'runs'}", f"CONFIG={config}"]
    env = {**os.environ, "NO_COLOR": "1"}
    first = subprocess.run([*args, "-j2"], capture_output=True, text=True, env=env)
    assert first.returncode == 0, first.stderr
    for stage in ("pre", "feat", "fused", "model", "eval", "pred"):
        assert (tmp_path / "runs" / stage / "meta.json").is_file()
    second = subprocess.run(args, capture_output=True, text=True, env=env)
    assert second.returncode == 0 and "Nothing to be done" in second.stdout, second.stdout

    time.sleep(0.05)
    os.utime(data / "manifest.csv")  # touched, content unchanged
    third = subprocess.run(args, capture_output=True, text=True, env=env)
    assert third.returncode == 0, third.stderr
    commands = [line for line in third.stdout.splitlines() if "-m mmcli " in line]
    assert len(commands) == 1 and " preprocess " in commands[0], third.stdout
    fourth = subprocess.run(args, capture_output=True, text=True, env=env)
    assert "Nothing to be done" in fourth.stdout, fourth.stdout
