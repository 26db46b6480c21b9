"""Faults: a full disk, file-size limits and permission errors are one-line errors (exit 5)
that leave nothing half-written; unreadable media are left out per item; bad limits exit 2."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli.helpers import fails, ok, read_rows, write_rows

from mmcli.errors import SystemIOError, from_os_error
from mmcli.testing.dummies import make_dataset


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def raise_os_error(code: int):
    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code), "/data/runs/pre/items.jsonl")

    return fail


@pytest.mark.parametrize("code, words", [
    (errno.ENOSPC, "no space left on device"), (errno.EACCES, "permission denied"),
    (errno.EROFS, "read-only file system"), (errno.EFBIG, "file too large"),
    (errno.EIO, "input/output error"),
])
def test_os_errors_while_writing_exit_5_and_leave_nothing(dataset, tmp_path, monkeypatch, code,
                                                          words):
    monkeypatch.setattr("mmcli.artifacts.write_jsonl", raise_os_error(code))
    runs = tmp_path / "runs"
    line = fails(5, "preprocess", dataset, "-o", runs / "pre", "-j", "1")
    assert line.startswith(f"error: {words}")
    assert ": /data/runs/pre/items.jsonl (" in line
    assert leftovers(runs) == []


def test_disk_full_in_the_middle_of_the_data(dataset, tmp_path, monkeypatch):
    from mmcli import artifacts

    calls = {"n": 0}
    real = artifacts.NpyAppender.append

    def append(self, block):
        calls["n"] += 1
        if calls["n"] > 10:
            raise OSError(errno.ENOSPC, "No space left on device", str(self.path))
        return real(self, block)

    monkeypatch.setattr(artifacts.NpyAppender, "append", append)
    runs = tmp_path / "runs"
    line = fails(5, "preprocess", dataset, "-o", runs / "pre", "-j", "1")
    assert "no space left on device" in line and ".npy" in line
    assert leftovers(runs) == []


def test_a_failure_keeps_the_previous_output(dataset, tmp_path, monkeypatch):
    out = tmp_path / "runs" / "pre"
    ok("preprocess", dataset, "-o", out, "-j", "1")
    before = (out / "meta.json").read_bytes()
    monkeypatch.setattr("mmcli.artifacts.write_jsonl", raise_os_error(errno.ENOSPC))
    fails(5, "preprocess", dataset, "-o", out, "-j", "1", "--seed", "3")
    assert (out / "meta.json").read_bytes() == before
    assert leftovers(out.parent) == ["pre"]


def test_file_size_limit_in_a_real_process(dataset, tmp_path):
    """RLIMIT_FSIZE makes the kernel refuse writes past 64 kB (EFBIG; Python ignores SIGXFSZ)."""
    resource = pytest.importorskip("resource")

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (64_000, 64_000))

    runs = tmp_path / "runs"
    proc = subprocess.run([sys.executable, "-m", "mmcli", "preprocess", str(dataset), "-o",
                           str(runs / "pre"), "-j", "1"], capture_output=True, text=True,
                          preexec_fn=limit, timeout=120, env={**os.environ, "NO_COLOR": "1"})
    assert proc.returncode == 5, proc.stderr
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: file too large"), last
    assert leftovers(runs) == []


def test_output_folder_not_writable(dataset, tmp_path, monkeypatch):
    """chmod does not stop root, so the refusal is simulated (see the non-root variant)."""
    locked = tmp_path / "locked"
    real_mkdir = Path.mkdir

    def mkdir(self, *args, **kwargs):
        if str(self).startswith(str(locked)):
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    line = fails(5, "preprocess", dataset, "-o", locked / "pre", "-j", "1")
    assert line.startswith(f"error: permission denied: {locked}")
    assert "write -o elsewhere" in line


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root ignores file permissions")
def test_output_folder_not_writable_for_real(dataset, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        line = fails(5, "preprocess", dataset, "-o", locked / "pre", "-j", "1")
    finally:
        locked.chmod(0o700)
    assert "permission denied" in line


def test_unreadable_media_are_missing_cells(dataset, tmp_path, monkeypatch):
    rows = read_rows(dataset)
    secret = str(dataset.parent / rows[4]["image"])
    real_open = os.open

    def refuse(path, *args, **kwargs):
        if str(path) == secret:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    out = tmp_path / "pre"
    ok("preprocess", dataset, "-o", out, "-j", "1")
    failures = read_rows(out / "failures.csv")
    assert [(f["id"], f["column"]) for f in failures] == [(rows[4]["id"], "image")]
    assert failures[0]["reason"] == f"kept: permission denied: {secret}"


def test_from_os_error_without_a_file_name():
    error = from_os_error(OSError(errno.ENOSPC, "No space left on device"))
    assert isinstance(error, SystemIOError) and error.exit_code == 5
    assert str(error) == "no space left on device (free some disk space or write -o elsewhere)"
    odd = from_os_error(OSError(errno.ENOTCONN, "Transport endpoint is not connected", "/x"))
    assert str(odd).startswith("Transport endpoint is not connected: /x (")


# --- limits through the CLI ---------------------------------------------------------------


@pytest.fixture
def long_items(tmp_path) -> Path:
    """12 rows; row 3 has 3 s of audio, row 5 has 400 characters of text."""
    from mmcli.testing.dummies import write_wav

    manifest = make_dataset(tmp_path / "data", n=12)
    rows = read_rows(manifest)
    write_wav(manifest.parent / rows[2]["audio"], 440.0, seconds=3.0)
    rows[4]["text"] = "word " * 80
    return write_rows(manifest, rows)


def config(tmp_path, **keys) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps({"preprocess": keys}), encoding="utf-8")
    return path


def test_long_audio_and_text_cut_by_default(long_items, tmp_path):
    out = tmp_path / "pre"
    ok("preprocess", long_items, "-o", out, "-j", "1",
       "-c", config(tmp_path, max_audio_seconds=1.0, max_text_chars=50, sample_rate=8000))
    assert read_rows(out / "failures.csv") == []
    items = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    assert len(items[4]["values"]["text"]) <= 50
    import numpy as np

    offsets = np.load(out / "data" / "audio.offsets.npy")
    assert offsets[3] - offsets[2] == 8000
    state = json.loads((out / "state" / "preprocess.json").read_text())
    assert state["long_audio"] == "cut" and state["max_text_chars"] == 50


def test_long_audio_and_text_fail_when_asked(long_items, tmp_path):
    out = tmp_path / "pre"
    ok("preprocess", long_items, "-o", out, "-j", "1",
       "-c", config(tmp_path, max_audio_seconds=1.0, long_audio="fail", max_text_chars=50,
                    long_text="fail", max_failed_fraction=0.5))
    failures = {f["row"]: f for f in read_rows(out / "failures.csv")}
    assert sorted(failures) == ["3", "5"]
    assert "longer than max_audio_seconds = 1 s" in failures["3"]["reason"]
    assert "more than max_text_chars = 50" in failures["5"]["reason"]


@pytest.mark.parametrize("keys, words", [
    ({"long_audio": "trim"}, "preprocess.long_audio is 'trim'"),
    ({"long_text": "drop"}, "preprocess.long_text is 'drop'"),
    ({"max_image_pixels": 0}, "must be positive"),
    ({"max_text_chars": -5}, "must be positive"),
    ({"media_roots": ["/no/such/folder"]}, "media root /no/such/folder is not a directory"),
    ({"media_roots": "media"}, "must be of type list"),
])
def test_bad_limit_values_exit_2(dataset, tmp_path, keys, words):
    line = fails(2, "preprocess", dataset, "-o", tmp_path / "pre", "-c", config(tmp_path, **keys))
    assert words in line


def test_image_pixel_limit_from_the_config(dataset, tmp_path):
    line = fails(3, "preprocess", dataset, "-o", tmp_path / "pre", "-j", "1",
                 "-c", config(tmp_path, max_image_pixels=100, max_failed_fraction=1.0))
    assert "column 'image'" in line and "has no usable cell in its" in line
    assert "image too large (16x16): more than max_image_pixels = 100 pixels" in line


def test_state_written_before_the_limits_existed_still_loads(pipeline, tmp_path):
    from mmcli.stages.preprocess import PreprocessState

    state = json.loads((pipeline.pre / "state" / "preprocess.json").read_text(encoding="utf-8"))
    for key in ("max_image_pixels", "long_audio", "max_text_chars", "long_text"):
        state.pop(key)
    (tmp_path / "preprocess.json").write_text(json.dumps(state), encoding="utf-8")
    loaded = PreprocessState.load(tmp_path)
    assert (loaded.max_image_pixels, loaded.long_audio) == (50_000_000, "cut")
    assert (loaded.max_text_chars, loaded.long_text) == (100_000, "cut")


def test_every_exit_code_is_documented_in_the_readme():
    from mmcli.errors import EXIT_CODES

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    for code in EXIT_CODES:
        assert f"\n| {code} | " in readme, f"exit code {code} is not in the README's table"
