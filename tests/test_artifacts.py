"""Stage directories: .npy appending, deterministic .npz, atomic writing, checked opening."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest

from mmcli import artifacts
from mmcli.artifacts import NpyAppender, StageWriter, open_stage
from mmcli.errors import ArtifactError

# --- arrays -------------------------------------------------------------------------------


def test_npy_appender_round_trip(tmp_path):
    path = tmp_path / "sub" / "x.npy"
    rng = np.random.default_rng(0)
    blocks = [rng.standard_normal((n, 3, 2)).astype(np.float32) for n in (4, 0, 7, 1)]
    with NpyAppender(path, np.float32, (3, 2)) as app:
        for b in blocks:
            app.append(b)
    loaded = np.load(path, allow_pickle=False)
    assert loaded.shape == (12, 3, 2)
    assert loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, np.concatenate(blocks))
    mm = artifacts.load_npy(path)
    np.testing.assert_array_equal(mm[5:9], loaded[5:9])


def test_npy_appender_converts_dtype_and_1d(tmp_path):
    path = tmp_path / "x.npy"
    with NpyAppender(path, np.uint8) as app:
        app.append(np.array([1, 2, 3]))
        app.append([250])
    loaded = np.load(path, allow_pickle=False)
    assert loaded.dtype == np.uint8
    np.testing.assert_array_equal(loaded, [1, 2, 3, 250])


def test_npy_appender_zero_rows(tmp_path):
    path = tmp_path / "x.npy"
    NpyAppender(path, np.float32, (5,)).close()
    loaded = np.load(path, allow_pickle=False)
    assert loaded.shape == (0, 5)
    assert loaded.dtype == np.float32


def test_npy_appender_rejects_wrong_shape(tmp_path):
    app = NpyAppender(tmp_path / "x.npy", np.float32, (3,))
    with pytest.raises(ValueError):
        app.append(np.zeros((2, 4)))
    app.close()


def test_load_npy_errors(tmp_path):
    with pytest.raises(ArtifactError, match="missing"):
        artifacts.load_npy(tmp_path / "nope.npy")
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"not an npy file at all")
    with pytest.raises(ArtifactError, match="cannot be read"):
        artifacts.load_npy(bad)


def test_save_npz_byte_identical(tmp_path, monkeypatch):
    arrays = {"b": np.arange(10, dtype=np.int64), "a": np.eye(3, dtype=np.float32),
              "c": np.zeros((0, 2))}
    artifacts.save_npz(tmp_path / "one.npz", arrays)
    # a later write, at another time of day, with the arrays given in another order
    later = time.localtime(time.time() + 3 * 86400 + 3671)
    monkeypatch.setattr(time, "localtime", lambda *a: later)
    monkeypatch.setattr(time, "time", lambda: time.mktime(later))
    artifacts.save_npz(tmp_path / "two.npz", dict(reversed(list(arrays.items()))))
    monkeypatch.undo()
    assert (tmp_path / "one.npz").read_bytes() == (tmp_path / "two.npz").read_bytes()
    with np.load(tmp_path / "one.npz", allow_pickle=False) as data:
        assert sorted(data.files) == ["a", "b", "c"]
        for key, value in arrays.items():
            np.testing.assert_array_equal(data[key], value)
            assert data[key].dtype == value.dtype


def test_save_npz_rejects_object_arrays(tmp_path):
    with pytest.raises(ValueError):
        artifacts.save_npz(tmp_path / "x.npz", {"o": np.array([{"a": 1}], dtype=object)})


def test_save_load_state_round_trip(tmp_path):
    params = {"name": "thing", "vocab": ["a", "b", "é"], "dim": 3, "nested": {"x": [1, 2]}}
    arrays = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "i": np.array([1, 2])}
    artifacts.save_state(tmp_path / "st", "comp", params, arrays)
    got_params, got_arrays = artifacts.load_state(tmp_path / "st", "comp")
    assert got_params == params
    assert set(got_arrays) == {"w", "i"}
    for key in arrays:
        np.testing.assert_array_equal(got_arrays[key], arrays[key])
        assert got_arrays[key].dtype == arrays[key].dtype


def test_save_state_without_arrays(tmp_path):
    artifacts.save_state(tmp_path, "p", {"a": 1}, {})
    assert not (tmp_path / "p.npz").exists()
    assert artifacts.load_state(tmp_path, "p") == ({"a": 1}, {})


def test_load_state_errors(tmp_path):
    with pytest.raises(ArtifactError, match="missing"):
        artifacts.load_state(tmp_path, "nope")
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        artifacts.load_state(tmp_path, "bad")


def test_load_state_truncated_npz(tmp_path):
    artifacts.save_state(tmp_path, "x", {"a": 1}, {"w": np.arange(100.0)})
    data = (tmp_path / "x.npz").read_bytes()
    (tmp_path / "x.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match="cannot be read"):
        artifacts.load_state(tmp_path, "x")


def test_jsonl_round_trip(tmp_path):
    rows = [{"id": "a", "v": 1}, {"id": "ü", "v": None}]
    artifacts.write_jsonl(tmp_path / "x.jsonl", rows)
    assert artifacts.read_jsonl(tmp_path / "x.jsonl") == rows


# --- stage directories --------------------------------------------------------------------


def make_stage(out, stage="preprocess", files=None):
    files = files if files is not None else {"a.txt": "alpha", "sub/b.txt": "beta"}
    with StageWriter(out, stage) as writer:
        for rel, text in files.items():
            (writer.path / rel).parent.mkdir(parents=True, exist_ok=True)
            (writer.path / rel).write_text(text, encoding="utf-8")
        writer.commit({"k": 1}, 3, {"input": "abc"}, {"n": len(files)})
    return out


def leftovers(parent, name):
    return [p.name for p in parent.iterdir() if p.name.startswith(f".{name}.")]


def test_commit_writes_meta(tmp_path):
    out = make_stage(tmp_path / "pre")
    meta = json.loads((out / "meta.json").read_text("utf-8"))
    assert meta["schema_version"] == artifacts.SCHEMA_VERSION
    assert meta["stage"] == "preprocess"
    assert meta["config"] == {"k": 1} and meta["seed"] == 3
    assert meta["inputs"] == {"input": "abc"} and meta["summary"] == {"n": 2}
    assert "numpy" in meta["versions"]
    assert meta["outputs"] == {"a.txt": artifacts.sha256_file(out / "a.txt"),
                               "sub/b.txt": artifacts.sha256_file(out / "sub" / "b.txt")}
    assert (out / "a.txt").read_text("utf-8") == "alpha"
    assert leftovers(tmp_path, "pre") == []


def test_exception_leaves_nothing(tmp_path):
    out = tmp_path / "pre"
    with pytest.raises(RuntimeError, match="boom"):
        with StageWriter(out, "preprocess") as writer:
            (writer.path / "a.txt").write_text("partial", encoding="utf-8")
            raise RuntimeError("boom")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_exception_keeps_previous_output(tmp_path):
    out = make_stage(tmp_path / "pre", files={"old.txt": "old"})
    with pytest.raises(KeyboardInterrupt):
        with StageWriter(out, "preprocess") as writer:
            (writer.path / "new.txt").write_text("new", encoding="utf-8")
            raise KeyboardInterrupt
    assert sorted(p.name for p in out.iterdir()) == ["meta.json", "old.txt"]
    assert leftovers(tmp_path, "pre") == []
    open_stage(out, "preprocess", "test")


def test_recommit_replaces(tmp_path):
    out = make_stage(tmp_path / "pre", files={"old.txt": "old", "keep.txt": "1"})
    make_stage(out, files={"new.txt": "new", "keep.txt": "2"})
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt", "meta.json", "new.txt"]
    assert (out / "keep.txt").read_text("utf-8") == "2"
    meta = open_stage(out, "preprocess", "test").meta
    assert set(meta["outputs"]) == {"new.txt", "keep.txt"}
    assert leftovers(tmp_path, "pre") == []


def test_writer_refuses_foreign_non_empty_dir(tmp_path):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.tex").write_text("x", encoding="utf-8")
    with pytest.raises(ArtifactError, match="not an mmcli stage directory"):
        StageWriter(out, "preprocess")
    assert (out / "thesis.tex").exists()


def test_writer_accepts_empty_existing_dir(tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    make_stage(out)
    open_stage(out, "preprocess", "test")


def test_open_stage_ok(tmp_path):
    out = make_stage(tmp_path / "pre")
    stage = open_stage(out, "preprocess", "mmcli extract")
    assert stage.stage == "preprocess"
    assert stage.file("a.txt") == out / "a.txt"
    assert stage.meta_hash() == artifacts.sha256_file(out / "meta.json")


def test_open_stage_missing_dir(tmp_path):
    with pytest.raises(ArtifactError) as exc:
        open_stage(tmp_path / "nope", "preprocess", "mmcli extract")
    assert "not a directory" in exc.value.message
    assert artifacts.MAKES["preprocess"] in exc.value.hint


def test_open_stage_missing_meta(tmp_path):
    (tmp_path / "half").mkdir()
    with pytest.raises(ArtifactError) as exc:
        open_stage(tmp_path / "half", "extract", "mmcli fuse")
    assert "meta.json is missing" in exc.value.message
    assert artifacts.MAKES["extract"] in exc.value.hint


def test_open_stage_wrong_stage_names_command(tmp_path):
    out = make_stage(tmp_path / "pre", stage="preprocess")
    with pytest.raises(ArtifactError) as exc:
        open_stage(out, "fuse", "mmcli train")
    assert "'preprocess' directory" in exc.value.message
    assert "mmcli train" in exc.value.message
    assert "mmcli fuse EXTRACT_DIR -o DIR" in exc.value.hint  # not the next stage: generic


def rewrite_meta(out, **changes):
    meta = json.loads((out / "meta.json").read_text("utf-8"))
    meta.update(changes)
    (out / "meta.json").write_text(json.dumps(meta), encoding="utf-8")


def test_open_stage_unknown_schema(tmp_path):
    out = make_stage(tmp_path / "pre")
    rewrite_meta(out, schema_version=99)
    with pytest.raises(ArtifactError, match="schema version 99"):
        open_stage(out, "preprocess", "mmcli extract")


def test_open_stage_not_a_meta_record(tmp_path):
    out = make_stage(tmp_path / "pre")
    (out / "meta.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ArtifactError, match="not an mmcli metadata record"):
        open_stage(out, "preprocess", "mmcli extract")
    (out / "meta.json").write_text("{broken", encoding="utf-8")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        open_stage(out, "preprocess", "mmcli extract")


def test_open_stage_modified_file(tmp_path):
    out = make_stage(tmp_path / "pre")
    (out / "sub" / "b.txt").write_text("tampered", encoding="utf-8")
    with pytest.raises(ArtifactError, match="modified"):
        open_stage(out, "preprocess", "mmcli extract")
    open_stage(out, "preprocess", "mmcli extract", verify=False)


def test_open_stage_deleted_file(tmp_path):
    out = make_stage(tmp_path / "pre")
    (out / "a.txt").unlink()
    with pytest.raises(ArtifactError, match="missing"):
        open_stage(out, "preprocess", "mmcli extract")


def test_open_stage_next_stage_hint_names_the_given_dir(tmp_path):
    out = make_stage(tmp_path / "pre", stage="preprocess")
    with pytest.raises(ArtifactError) as exc:
        open_stage(out, "extract", "mmcli fuse")
    assert "is a 'preprocess' directory, but mmcli fuse needs an 'extract' one" in exc.value.message
    assert f"mmcli extract {out} -o DIR" in exc.value.hint


def test_stage_writer_refuses_its_own_input(tmp_path):
    out = make_stage(tmp_path / "pre", stage="preprocess")
    with pytest.raises(ArtifactError, match="also the input"):
        StageWriter(out, "extract", (out,))
    assert (out / "meta.json").exists()


def test_stage_writer_removes_stale_tmp_of_dead_process(tmp_path):
    stale = tmp_path / ".out.tmp-999999999"
    stale.mkdir()
    (stale / "half.npy").write_bytes(b"x")
    live = tmp_path / f".out.tmp-{os.getppid()}"
    live.mkdir()
    with StageWriter(tmp_path / "out", "preprocess") as writer:
        writer.commit({}, 0, {}, {})
    assert not stale.exists()
    assert live.exists()  # a running process's work is left alone


# --- output locks --------------------------------------------------------------------------


@pytest.mark.parametrize("stage", ["preprocess", "extract", "fuse", "train", "eval", "predict"])
def test_a_stage_takes_its_output_lock_before_any_work(stage, pipeline, tmp_path, monkeypatch):
    """extract fitted and train trained before StageWriter took the lock: two overlapping runs
    both did the whole work, then one exited 4."""
    import sys

    from mmcli import stages

    started = []

    def spy(name, original):
        def wrapped(*args, **kwargs):
            started.append(name)
            return original(*args, **kwargs)
        return wrapped

    monkeypatch.setattr(artifacts, "open_stage", spy("open_stage", artifacts.open_stage))
    for module in ("mmcli.stages.preprocess", "mmcli.stages.predict"):
        monkeypatch.setattr(sys.modules[module], "read_manifest",
                            spy("read_manifest", sys.modules[module].read_manifest))
    monkeypatch.setenv("MMCLI_LOCK_WAIT", "0")
    p, out = pipeline, tmp_path / "out"
    call = {"preprocess": lambda: stages.preprocess(p.manifest, out),
            "extract": lambda: stages.extract(p.pre, out),
            "fuse": lambda: stages.fuse(p.feat, out),
            "train": lambda: stages.train(p.fused, out),
            "eval": lambda: stages.evaluate(p.model, p.fused, out),
            "predict": lambda: stages.predict(p.model, p.manifest, out)}[stage]
    holder = artifacts.OutputLock(out)
    try:
        with pytest.raises(ArtifactError, match="is being written by another mmcli"):
            call()
    finally:
        holder.release()
    assert started == []
    assert not out.exists() and not (tmp_path / ".out.lock").exists()


def _hold_in_turn(out, barrier, inside, most, entered) -> None:
    barrier.wait()
    lock = artifacts.OutputLock(out)
    with inside.get_lock():
        inside.value += 1
        most.value = max(most.value, inside.value)
    time.sleep(0.02)
    with inside.get_lock():
        inside.value -= 1
        entered.value += 1
    lock.release()


def test_racing_takeovers_of_a_stale_lock_let_one_in_at_a_time(tmp_path, monkeypatch):
    """The takeover of a dead holder's lock was check-then-act: two starters could both find it
    stale, and one removed the lock the other had just made; both went on writing."""
    import multiprocessing
    import socket
    import subprocess
    import sys

    ctx = multiprocessing.get_context("fork")
    monkeypatch.setenv("MMCLI_LOCK_WAIT", "60")
    # a slow look at the holder (a loaded machine, a network file system) widens the window
    # between checking and acting, which an atomic lock does not have
    read_holder = artifacts.OutputLock._holder

    def slow_holder(self):
        holder = read_holder(self)
        time.sleep(0.05)
        return holder

    monkeypatch.setattr(artifacts.OutputLock, "_holder", slow_holder)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    n = 8
    for _ in range(3):
        out = tmp_path / "out"
        (tmp_path / ".out.lock").write_text(
            json.dumps({"pid": int(dead), "host": socket.gethostname()}))
        barrier = ctx.Barrier(n)
        inside, most, entered = ctx.Value("i", 0), ctx.Value("i", 0), ctx.Value("i", 0)
        procs = [ctx.Process(target=_hold_in_turn, args=(out, barrier, inside, most, entered))
                 for _ in range(n)]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(60)
        assert [proc.exitcode for proc in procs] == [0] * n
        assert entered.value == n and most.value == 1
        assert not (tmp_path / ".out.lock").exists()


def test_the_lock_dies_with_its_holder(tmp_path, monkeypatch):
    """A SIGKILLed holder leaves its lock file; the next run takes it at once."""
    import subprocess
    import sys

    out = tmp_path / "out"
    code = ("import sys, time; from pathlib import Path; from mmcli import artifacts; "
            "artifacts.OutputLock(Path(sys.argv[1])); print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(out)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        monkeypatch.setenv("MMCLI_LOCK_WAIT", "0")
        with pytest.raises(ArtifactError, match=f"pid {holder.pid} on "):
            artifacts.OutputLock(out)
    finally:
        holder.kill()
        holder.wait()
    assert (tmp_path / ".out.lock").exists()
    artifacts.OutputLock(out).release()
    assert not (tmp_path / ".out.lock").exists()
