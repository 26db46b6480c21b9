"""Checkpoint machinery for resumable stages: Journal, NpyAppender(resume_rows), adoption of a
dead run's temporary directory by StageWriter(resume_key=...)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

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


def test_hash_cache_trusts_a_file_only_while_its_size_and_time_are_unchanged(tmp_path):
    import os

    from mmcli.artifacts import HashCache, sha256_file

    f = tmp_path / "a.bin"
    f.write_bytes(b"one")
    cache = HashCache()
    assert cache.sha256(f) == sha256_file(f)
    st = os.stat(f)
    f.write_bytes(b"two")  # same size: only the modification time tells
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert cache.sha256(f) == sha256_file(f)
    cache.save(tmp_path / HashCache.NAME)
    assert HashCache().load(tmp_path / HashCache.NAME).entries == cache.entries
    assert HashCache().load(tmp_path / "missing.json").entries == {}


def test_a_chain_in_one_process_hashes_each_output_once(tmp_path, monkeypatch):
    """Under one hash_cache (as in mmcli run) a stage checks its input, the previous stage's
    output, without reading it again; a file modified since is still caught."""
    from mmcli import artifacts
    from mmcli.config import ExtractConfig, PreprocessConfig
    from mmcli.errors import ArtifactError
    from mmcli.stages import extract, preprocess
    from mmcli.testing.dummies import make_dataset

    manifest = make_dataset(tmp_path / "data", n=12)
    read = []
    sha256_file = artifacts.sha256_file
    monkeypatch.setattr(artifacts, "sha256_file", lambda p: read.append(str(p)) or
                        sha256_file(p))
    with artifacts.hash_cache():
        preprocess(manifest, tmp_path / "pre", PreprocessConfig(jobs=1))
        written = len(read)
        extract(tmp_path / "pre", tmp_path / "feat", ExtractConfig(jobs=1))
        again = [p for p in read[written:] if "/pre/" in p and not p.endswith("meta.json")]
        assert not again
        data = tmp_path / "pre" / "data" / "value.npy"
        data.write_bytes(data.read_bytes()[:-1])
        with pytest.raises(ArtifactError, match="value.npy was modified"):
            extract(tmp_path / "pre", tmp_path / "feat2", ExtractConfig(jobs=1))
