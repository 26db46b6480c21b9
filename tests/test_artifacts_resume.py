"""Checkpoint machinery for resumable stages: Journal, NpyAppender(resume_rows), adoption of a
dead run's temporary directory by StageWriter(resume_key=...)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from mmcli.artifacts import Journal, NpyAppender, StageWriter


def dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(proc.stdout)


def test_appender_resumes_after_the_recorded_rows(tmp_path):
    path = tmp_path / "x.npy"
    a = NpyAppender(path, np.float32, (3,))
    a.append(np.ones((4, 3)))
    a.flush()
    a.append(np.full((2, 3), 7))  # written after the last checkpoint: must be dropped
    a._f.close()  # killed: no header written
    b = NpyAppender(path, np.float32, (3,), resume_rows=4)
    b.append(np.zeros((1, 3)))
    b.close()
    got = np.load(path)
    assert got.shape == (5, 3)
    assert (got[:4] == 1).all() and (got[4] == 0).all()


def test_journal_keeps_complete_records_of_the_same_fingerprint(tmp_path):
    j = Journal(tmp_path, "fp1")
    j.append({"chunk": 0})
    j.append({"chunk": 1})
    with open(j.path, "a") as f:
        f.write('{"chunk": 2')  # cut short by a kill
    assert Journal(tmp_path, "fp1").records == [{"chunk": 0}, {"chunk": 1}]
    assert Journal(tmp_path, "other").records == []
    again = Journal(tmp_path, "other")
    again.close()
    assert not again.path.exists()


def test_writer_adopts_a_dead_runs_tmp_with_the_same_key(tmp_path):
    out = tmp_path / "out"
    dead = tmp_path / f".out.tmp-{dead_pid()}"
    dead.mkdir()
    Journal(dead, "key").append({"chunk": 0})
    (dead / "part.bin").write_bytes(b"done")
    writer = StageWriter(out, "extract", resume_key="key")
    assert not dead.exists()
    assert (writer.path / "part.bin").read_bytes() == b"done"
    assert writer.journal().records == [{"chunk": 0}]
    writer.commit({}, 0, {}, {})
    assert sorted(p.name for p in out.iterdir()) == ["meta.json", "part.bin"]


def test_writer_discards_a_dead_runs_tmp_with_another_key(tmp_path):
    dead = tmp_path / f".out.tmp-{dead_pid()}"
    dead.mkdir()
    Journal(dead, "old-config").append({"chunk": 0})
    writer = StageWriter(tmp_path / "out", "extract", resume_key="new-config")
    assert not dead.exists()
    assert writer.journal().records == []
    writer.abort()
