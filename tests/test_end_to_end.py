"""The six commands as a user runs them: real ``python -m mmcli`` processes.

Two runs with the same seed must give byte-identical files in every stage directory; a
killed or interrupted stage must never leave a directory that passes for complete.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mmcli.testing.dummies import make_dataset

REPO = Path(__file__).resolve().parents[1]
STAGES = ["pre", "feat", "fused", "model", "eval", "pred"]


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MMCLI_DEBUG"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def mmcli(*args, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mmcli", *map(str, args)], cwd=cwd,
                          env=environment(), capture_output=True, text=True, timeout=timeout)


def start(*args, cwd: Path) -> subprocess.Popen:
    """Start mmcli in its own process group, as a shell starts a foreground job."""
    return subprocess.Popen([sys.executable, "-m", "mmcli", *map(str, args)], cwd=cwd,
                            env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def wait_for_progress(proc: subprocess.Popen, prefix: str) -> str:
    """Block until the process prints a progress line (so the stage is half-way through)."""
    watchdog = threading.Timer(120, proc.kill)
    watchdog.start()
    try:
        while line := proc.stderr.readline():
            if line.startswith(prefix):
                return line
    finally:
        watchdog.cancel()
    pytest.fail(f"{proc.args} ended before printing {prefix!r}: rc {proc.wait()}")


def file_hashes(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


# --- the whole chain, twice ----------------------------------------------------------------


def run_chain(workdir: Path, manifest: Path, new: Path) -> list[subprocess.CompletedProcess]:
    workdir.mkdir()
    (workdir / "run.yaml").write_text(
        "seed: 3\ntrain:\n  model: mlp\n  params: {hidden: [32], epochs: 40}\n")
    commands = [
        ["preprocess", manifest, "-o", "runs/pre", "--jobs", "1", "-c", "run.yaml"],
        ["extract", "runs/pre", "-o", "runs/feat", "--jobs", "1", "-c", "run.yaml"],
        ["fuse", "runs/feat", "-o", "runs/fused", "--method", "concat", "-c", "run.yaml"],
        ["train", "runs/fused", "-o", "runs/model", "--device", "cpu", "-c", "run.yaml"],
        ["eval", "runs/model", "runs/fused", "-o", "runs/eval", "-c", "run.yaml"],
        ["predict", "runs/model", new, "-o", "runs/pred", "--jobs", "1", "-c", "run.yaml"],
    ]
    done = []
    for command in commands:
        done.append(mmcli(*command, cwd=workdir))
        if done[-1].returncode != 0:
            break
    return done


@pytest.fixture(scope="module")
def chains(tmp_path_factory):
    """Two runs of the six commands on the same data and seed, in separate folders.

    Paths are given relative to each run's folder (and the manifests by one absolute path),
    as a user re-running a script would, so even meta.json must come out the same.
    """
    root = tmp_path_factory.mktemp("e2e")
    manifest = make_dataset(root / "data", n=48)
    new = make_dataset(root / "new", n=12, seed=7, with_label=False, id_prefix="new")
    with ThreadPoolExecutor(2) as pool:  # the two runs are independent: run them side by side
        futures = [pool.submit(run_chain, root / name, manifest, new) for name in ("a", "b")]
        results = [f.result() for f in futures]
    return root / "a" / "runs", root / "b" / "runs", results


def test_every_command_succeeds_quietly_on_stdout_and_without_noise(chains):
    *_, results = chains
    for run in results:
        assert len(run) == 6
        for done in run:
            assert done.returncode == 0, (done.args, done.stderr)
            assert "Traceback" not in done.stderr
            assert "Warning" not in done.stderr, done.stderr
            assert "error:" not in done.stderr
        eval_stdout = run[4].stdout.splitlines()
        assert eval_stdout[0].split()[0] == "split"
        assert run[0].stdout == run[1].stdout == run[5].stdout == ""


def test_same_seed_gives_byte_identical_stage_directories(chains):
    a, b, _ = chains
    assert sorted(p.name for p in a.iterdir()) == sorted(STAGES)
    hashes_a, hashes_b = file_hashes(a), file_hashes(b)
    assert hashes_a.keys() == hashes_b.keys()
    different = [rel for rel in hashes_a if hashes_a[rel] != hashes_b[rel]]
    assert different == []
    suffixes = {Path(rel).suffix for rel in hashes_a}
    assert {".npy", ".npz", ".json", ".jsonl", ".csv", ".md", ".png", ".html"} <= suffixes
    for stage in STAGES:
        assert f"{stage}/meta.json" in hashes_a
    assert not [rel for rel in hashes_a if ".tmp-" in rel or ".old-" in rel]


def test_meta_json_records_the_chain(chains):
    a, _, _ = chains
    metas = {s: json.loads((a / s / "meta.json").read_text()) for s in STAGES}
    assert [metas[s]["stage"] for s in STAGES] == [
        "preprocess", "extract", "fuse", "train", "eval", "predict"]
    assert metas["pre"]["seed"] == metas["feat"]["seed"] == metas["model"]["seed"] == 3
    assert metas["model"]["config"]["model"] == "mlp"
    assert metas["feat"]["inputs"] == {
        "runs/pre": hashlib.sha256((a / "pre" / "meta.json").read_bytes()).hexdigest()}
    for stage in STAGES:
        meta = metas[stage]
        for rel, digest in meta["outputs"].items():
            assert hashlib.sha256((a / stage / rel).read_bytes()).hexdigest() == digest


def test_predictions_csv(chains):
    a, _, results = chains
    with open(a / "pred" / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    classes = ["blue", "green", "red"]
    assert list(rows[0]) == ["id", "prediction", *(f"prob_{c}" for c in classes)]
    assert [r["id"] for r in rows] == [f"new{k:04d}" for k in range(12)]
    for row in rows:
        probs = {c: float(row[f"prob_{c}"]) for c in classes}
        assert all(0.0 <= p <= 1.0 for p in probs.values())
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-5)
        assert row["prediction"] == max(probs, key=probs.get)
    # make_dataset cycles red, green, blue; the classes are easy to tell apart
    truth = [("red", "green", "blue")[k % 3] for k in range(12)]
    assert sum(r["prediction"] == t for r, t in zip(rows, truth)) >= 10
    assert "predict: 12 of 12 items predicted" in results[0][5].stderr


def test_eval_metrics(chains):
    a, _, _ = chains
    metrics = json.loads((a / "eval" / "metrics.json").read_text())
    assert sorted(metrics) == ["test", "train", "val"]
    assert sum(m["n"] for m in metrics.values()) == 48
    assert metrics["test"]["accuracy"] >= 0.8


# --- interruption --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_manifest(tmp_path_factory) -> Path:
    """400 rows: long enough that a stage can be stopped half-way."""
    return make_dataset(tmp_path_factory.mktemp("big") / "data", n=400)


@pytest.mark.parametrize("existing", [False, True], ids=["fresh", "existing"])
def test_killed_stage_leaves_no_complete_looking_directory(big_manifest, pipeline, tmp_path,
                                                           existing):
    runs = tmp_path / "runs"
    runs.mkdir()
    out = runs / "pre"
    if existing:
        shutil.copytree(pipeline.pre, out)
    before = file_hashes(out) if existing else None

    proc = start("preprocess", big_manifest, "-o", out, "--jobs", "1", cwd=tmp_path)
    line = wait_for_progress(proc, "preprocess: ")
    assert "/400" in line and "(100%)" not in line
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL

    if existing:
        assert file_hashes(out) == before
    else:
        assert not out.exists()
    leftovers = [p for p in runs.iterdir() if p.name not in ("pre", ".pre.lock")]
    for p in leftovers:
        assert p.name.startswith(".pre.tmp-"), p.name
        assert not (p / "meta.json").exists()

    # the leftovers (temporary folder, the dead process's lock) do not get in the way of the
    # next run, which removes them
    from mmcli.config import PreprocessConfig
    from mmcli.stages import preprocess

    preprocess(pipeline.manifest, out, PreprocessConfig(jobs=1))
    assert (out / "meta.json").is_file()
    assert sorted(p.name for p in runs.iterdir()) == ["pre"]


@pytest.mark.parametrize("workers", [["--jobs", "2"], ["--executor", "dask", "--jobs", "2"]],
                         ids=["local", "dask"])
def test_ctrl_c_exits_130_without_traceback_and_keeps_the_old_output(big_manifest, pipeline,
                                                                      tmp_path, workers):
    runs = tmp_path / "runs"
    out = runs / "pre"
    shutil.copytree(pipeline.pre, out)
    before = file_hashes(out)

    # two workers: Ctrl-C reaches the whole process group, workers included (with dask, the
    # local cluster's worker processes)
    proc = start("preprocess", big_manifest, "-o", out, *workers, cwd=tmp_path)
    wait_for_progress(proc, "preprocess: ")
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)

    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "KeyboardInterrupt" not in stderr
    assert stderr.rstrip().splitlines()[-1].startswith("error: interrupted")
    assert stdout == ""
    assert file_hashes(out) == before
    assert [p.name for p in runs.iterdir()] == ["pre"]  # the temporary was removed


# --- startup -------------------------------------------------------------------------------


def test_help_runs_as_a_module(tmp_path):
    done = mmcli("--help", cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Usage:" in done.stdout
    for command in ("preprocess", "extract", "fuse", "train", "eval", "predict"):
        assert command in done.stdout


def test_cli_import_and_help_do_not_load_heavy_libraries(tmp_path):
    code = (
        "import sys\n"
        "import mmcli.cli.app\n"
        "import mmcli.stages\n"
        "from typer.testing import CliRunner\n"
        "for c in ('preprocess', 'extract', 'fuse', 'train', 'eval', 'predict'):\n"
        "    assert CliRunner().invoke(mmcli.cli.app.app, [c, '--help']).exit_code == 0\n"
        "print(sorted(m for m in ('torch', 'sklearn', 'gensim', 'librosa') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=environment(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_undecodable_audio_is_listed_without_library_warnings(tmp_path):
    manifest = make_dataset(tmp_path / "data", n=12)
    (tmp_path / "data" / "media" / "broken.wav").write_bytes(b"RIFF\0\0\0\0WAVEjunk")
    lines = manifest.read_text().splitlines()
    lines[3] = lines[3].replace("media/item0002.wav", "media/broken.wav")
    manifest.write_text("\n".join(lines) + "\n")

    done = mmcli("preprocess", manifest, "-o", tmp_path / "pre", "-j", "1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "missing modalities in kept items: audio 1" in done.stderr
    assert "Warning" not in done.stderr, done.stderr
    failures = (tmp_path / "pre" / "failures.csv").read_text().splitlines()
    assert failures[1].startswith("3,item0002,audio,kept: cannot decode audio")
