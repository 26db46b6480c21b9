"""mmcli run: up-to-date checks, --force, --dry-run; output locks; unchanged outputs kept."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mmcli import artifacts
from mmcli.errors import ArtifactError, UsageError
from mmcli.stages.run import run_pipeline
from mmcli.testing.dummies import make_dataset


def write_pipeline(tmp: Path, fuse_method: str = "concat", predict: bool = True) -> Path:
    manifest = make_dataset(tmp / "data", n=30)
    new = make_dataset(tmp / "data", n=6, with_label=False, name="new", id_prefix="new")
    lines = ["pipeline:", f"  manifest: {manifest}", f"  workdir: {tmp / 'work'}"]
    if predict:
        lines.append(f"  predict: {new}")
    lines += ["preprocess: {jobs: 1}", "extract: {jobs: 1}", f"fuse: {{method: {fuse_method}}}"]
    path = tmp / "pipeline.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def actions(reports) -> dict[str, str]:
    return {r.stage: r.action for r in reports}


STAGES = ["preprocess", "extract", "fuse", "train", "eval", "predict"]


@pytest.fixture
def ran(tmp_path):
    path = write_pipeline(tmp_path)
    first = run_pipeline(path)
    return path, first


def test_first_run_runs_everything_then_nothing(ran):
    path, first = ran
    assert actions(first) == dict.fromkeys(STAGES, "ran")
    assert all(r.reason == "no output yet" for r in first)
    second = run_pipeline(path)
    assert actions(second) == dict.fromkeys(STAGES, "skipped")


def test_config_change_reruns_from_the_changed_stage(ran, tmp_path):
    path, _ = ran
    before = {s: (tmp_path / "work" / d / "meta.json").stat().st_mtime_ns
              for s, d in (("preprocess", "pre"), ("extract", "feat"))}
    path.write_text(path.read_text().replace("method: concat", "method: sum"))
    plan = run_pipeline(path, dry_run=True)
    assert actions(plan) == {"preprocess": "skipped", "extract": "skipped", "fuse": "would run",
                             "train": "would run", "eval": "would run", "predict": "would run"}
    assert next(r for r in plan if r.stage == "fuse").reason == "config changed"
    assert next(r for r in plan if r.stage == "train").reason == "an earlier stage would run"
    # a dry run changes nothing
    assert run_pipeline(path, dry_run=True)[2].action == "would run"
    second = run_pipeline(path)
    assert actions(second)["fuse"] == "ran" and actions(second)["extract"] == "skipped"
    after = {s: (tmp_path / "work" / d / "meta.json").stat().st_mtime_ns
             for s, d in (("preprocess", "pre"), ("extract", "feat"))}
    assert after == before


def test_changed_media_reruns_preprocess(ran, tmp_path):
    path, _ = ran
    img = next((tmp_path / "data" / "media").glob("item0001.png"))
    os.utime(img, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert run_pipeline(path, dry_run=True)[0].reason == "inputs changed"


def test_force_and_modified_output(ran, tmp_path):
    path, _ = ran
    assert actions(run_pipeline(path, force=True)) == dict.fromkeys(STAGES, "ran")
    (tmp_path / "work" / "fused" / "fused.npy").write_bytes(b"tampered")
    plan = run_pipeline(path, dry_run=True)
    fuse = next(r for r in plan if r.stage == "fuse")
    assert fuse.action == "would run" and "modified" in fuse.reason


def test_jobs_does_not_change_the_fingerprint(ran):
    path, _ = ran
    path.write_text(path.read_text().replace("extract: {jobs: 1}", "extract: {jobs: 2}"))
    assert actions(run_pipeline(path, dry_run=True))["extract"] == "skipped"


def test_bad_pipeline_files(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("fuse: {method: concat}\n")
    with pytest.raises(UsageError, match="'pipeline' section"):
        run_pipeline(bad)
    bad.write_text("pipeline: {manifest: m.csv, workdir: w, extra: 1}\n")
    with pytest.raises(UsageError, match="'extra'"):
        run_pipeline(bad)


def test_identical_output_is_not_rewritten(pipeline, tmp_path):
    from mmcli.config import FuseConfig
    from mmcli.stages import fuse

    out = tmp_path / "fused"
    fuse(pipeline.feat, out, FuseConfig())
    stamp = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    time.sleep(0.01)
    fuse(pipeline.feat, out, FuseConfig())
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == stamp
    fuse(pipeline.feat, out, FuseConfig(method="sum"))
    assert (out / "meta.json").stat().st_mtime_ns != stamp[out / "meta.json"]


def test_lock_refuses_a_second_writer_and_names_the_holder(tmp_path, monkeypatch):
    out = tmp_path / "out"
    holder = artifacts.OutputLock(out)
    monkeypatch.setenv("MMCLI_LOCK_WAIT", "0")
    with pytest.raises(ArtifactError) as exc:
        artifacts.StageWriter(out, "preprocess")
    assert f"pid {os.getpid()}" in exc.value.message and ".out.lock" in exc.value.message
    assert "MMCLI_LOCK_WAIT" in exc.value.hint
    holder.release()
    artifacts.StageWriter(out, "preprocess").abort()
    assert not (tmp_path / ".out.lock").exists()


def test_lock_waits_for_the_holder(tmp_path, monkeypatch):
    out = tmp_path / "out"
    holder = artifacts.OutputLock(out)
    monkeypatch.setenv("MMCLI_LOCK_WAIT", "30")
    threading.Timer(0.5, holder.release).start()
    t0 = time.monotonic()
    writer = artifacts.StageWriter(out, "preprocess")
    assert time.monotonic() - t0 >= 0.4
    writer.commit({}, 0, {}, {})
    assert (out / "meta.json").exists()


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    import socket

    lock = tmp_path / ".out.lock"
    lock.write_text(f'{{"pid": {proc.stdout.strip()}, "host": "{socket.gethostname()}"}}')
    writer = artifacts.StageWriter(tmp_path / "out", "preprocess")
    writer.commit({}, 0, {}, {})
    assert not lock.exists()


def test_concurrent_cli_runs_are_serialised(dataset, tmp_path):
    """Two preprocess processes on one output: the second exits 4 with a clear message (no
    wait), the output is complete and valid."""
    out = tmp_path / "pre"
    cmd = [sys.executable, "-m", "mmcli", "preprocess", str(dataset), "-o", str(out), "-j", "1",
           "-q"]
    env = {**os.environ, "MMCLI_LOCK_WAIT": "0"}
    first = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (tmp_path / ".pre.lock").exists() and first.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    second = subprocess.run(cmd, env=env, capture_output=True, text=True)
    first.communicate(timeout=120)
    assert first.returncode == 0
    if second.returncode != 0:  # it met the lock (the first may also have finished already)
        assert second.returncode == 4
        assert "is being written by another mmcli" in second.stderr
        assert "Traceback" not in second.stderr
    artifacts.open_stage(out, "preprocess", "test")


@pytest.mark.parametrize("name", ["pipeline.yaml", "pipeline_gmu.yaml",
                                  "pipeline_encoders.yaml"])
def test_shipped_pipelines_are_valid(name, monkeypatch):
    root = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(root)
    plan = run_pipeline(root / "configs" / name, dry_run=True, force=True)
    assert [r.stage for r in plan] == STAGES


@pytest.mark.parametrize("name", ["pipeline_gmu.yaml", "pipeline_encoders.yaml"])
def test_shipped_model_params_are_accepted(name):
    import yaml

    from mmcli.config import ExtractConfig, build
    from mmcli.extractors import build_extractor
    from mmcli.models import build_model

    root = Path(__file__).resolve().parents[2]
    config = yaml.safe_load((root / "configs" / name).read_text())
    build_model(config["train"]["model"], config["train"]["params"], seed=0, device="cpu")
    extract = build(ExtractConfig, config, "extract")
    for kind in ("image", "audio", "text"):
        for ext in getattr(extract, kind):
            build_extractor(ext, kind, extract.params.get(ext))


def test_run_starts_workers_once_with_what_every_stage_imports(monkeypatch):
    """mmcli run starts the fork server before its first stage with the extractors' and the
    model candidates' libraries, so each stage's pool forks workers that have them (a fork
    server, once started, keeps the imports it started with)."""
    from mmcli import parallel
    from mmcli.config import ExtractConfig, PreprocessConfig
    from mmcli.stages.run import _start_workers

    calls = []
    monkeypatch.setattr(parallel, "start_workers",
                        lambda runtime, modules=(): calls.append(set(modules)))
    _start_workers({"preprocess": PreprocessConfig(), "extract": ExtractConfig()})
    assert len(calls) == 1
    assert {"librosa.feature.spectral", "skimage.feature._hog", "sklearn.linear_model",
            "sklearn.svm"} <= calls[0]
    # not torch: preprocess's and the first fold fits' workers would wait for its import
    assert "torch" not in calls[0]
