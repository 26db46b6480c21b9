"""The Dask executor: the item-parallel stages on a 2-worker LocalCluster (worker processes)
give the same bytes as the local process pool, also when a worker dies mid-stage, and a poison
item that kills every worker decoding it fails alone."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from distributed import Client, LocalCluster

from mmcli import parallel
from mmcli.config import ExtractConfig, PredictConfig, PreprocessConfig
from mmcli.parallel import Runtime, ordered_map
from mmcli.stages import extract, fuse, predict, preprocess, train
from mmcli.testing.dummies import make_dataset
from mmcli.testing.faults import KillOnce, PoisonImage, RemoteWorker


def _cluster(**config):
    import dask

    with dask.config.set(config):
        return LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                            dashboard_address=":0")


@pytest.fixture(scope="module")
def cluster():
    c = _cluster()
    yield c
    parallel._close(c.scheduler_address)
    c.close()


@pytest.fixture
def small_chunks(monkeypatch):
    """Several chunks on tiny data (chunking is decided here, in the driver)."""
    import importlib

    monkeypatch.setattr(importlib.import_module("mmcli.stages.preprocess"), "CHUNK", 4)
    monkeypatch.setattr(importlib.import_module("mmcli.stages.extract"), "CHUNK", 8)


def _same_tree(a: Path, b: Path) -> None:
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for rel in files:
        assert filecmp.cmp(a / rel, b / rel, shallow=False), rel


class _Setup:
    offset = 0


def _set_offset(k: int) -> None:
    _Setup.offset = k


def _shifted(x: int) -> int:
    return x + _Setup.offset


def test_ordered_map_on_dask_keeps_order_and_runs_the_setup(cluster):
    runtime = Runtime(executor="dask", scheduler=cluster.scheduler_address)
    out = list(ordered_map(_shifted, list(range(30)), runtime, _set_offset, (100,)))
    assert out == [x + 100 for x in range(30)]
    # a second map with another set-up on the same workers sees its own
    assert list(ordered_map(_shifted, [1, 2], runtime, _set_offset, (7,))) == [8, 9]


def test_stages_on_dask_match_the_local_executor_byte_for_byte(tmp_path, cluster, small_chunks,
                                                              monkeypatch):
    """Workers as on other machines (another working directory, no access to the artifact
    directories); a manifest path relative to the driver's working directory."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with Client(cluster) as client:
        client.register_plugin(RemoteWorker(str(elsewhere)))
    make_dataset(tmp_path / "data", n=40)
    monkeypatch.chdir(tmp_path)
    manifest = Path("data/manifest.csv")
    new = make_dataset(tmp_path / "new", n=9, with_label=False, id_prefix="new")
    dask = {"executor": "dask", "scheduler": cluster.scheduler_address}
    for name, options in (("local", {"jobs": 1}), ("dask", dask)):
        preprocess(manifest, tmp_path / name / "pre", PreprocessConfig(**options))
        # from the same input directory, which meta.json names
        extract(tmp_path / "local" / "pre", tmp_path / name / "feat", ExtractConfig(**options))
    for stage in ("pre", "feat"):
        _same_tree(tmp_path / "local" / stage, tmp_path / "dask" / stage)
    fuse(tmp_path / "local" / "feat", tmp_path / "fused")
    train(tmp_path / "fused", tmp_path / "model")
    predict(tmp_path / "model", new, tmp_path / "pred-local", PredictConfig(jobs=1))
    predict(tmp_path / "model", new, tmp_path / "pred-dask", PredictConfig(**dask))
    _same_tree(tmp_path / "pred-local", tmp_path / "pred-dask")


def test_a_worker_killed_mid_stage_changes_nothing(tmp_path, small_chunks):
    manifest = make_dataset(tmp_path / "data", n=48)
    preprocess(manifest, tmp_path / "local", PreprocessConfig(jobs=1))
    c = _cluster()
    try:
        marker = tmp_path / "killed"
        with Client(c) as client:
            client.register_plugin(KillOnce(str(marker), after=12))
            preprocess(manifest, tmp_path / "dask",
                       PreprocessConfig(executor="dask", scheduler=c.scheduler_address))
    finally:
        parallel._close(c.scheduler_address)
        c.close()
    assert marker.exists()  # a worker did die, a quarter of the way in
    _same_tree(tmp_path / "local", tmp_path / "dask")


def test_a_poison_item_fails_alone(tmp_path, small_chunks):
    manifest = make_dataset(tmp_path / "data", n=24)
    preprocess(manifest, tmp_path / "local", PreprocessConfig(jobs=1))
    c = _cluster(**{"distributed.scheduler.allowed-failures": 1})
    try:
        with Client(c) as client:
            client.register_plugin(PoisonImage("item0005"))
            summary = preprocess(manifest, tmp_path / "dask", PreprocessConfig(
                executor="dask", scheduler=c.scheduler_address, max_failed_fraction=0.5))
    finally:
        parallel._close(c.scheduler_address)
        c.close()
    assert summary["failed"] == 1 and summary["kept"] == 23
    failures = (tmp_path / "dask" / "failures.csv").read_text().splitlines()
    assert len(failures) == 2 and failures[1].startswith("6,item0005,image/audio,")
    assert "worker process died" in failures[1]
    local = np.load(tmp_path / "local" / "data" / "image.npy")
    assert np.array_equal(np.load(tmp_path / "dask" / "data" / "image.npy"),
                          np.delete(local, 5, axis=0))


def test_cli_dask_with_a_local_cluster_matches_local(tmp_path):
    """Without --scheduler, a local cluster of --jobs worker processes is started."""
    manifest = make_dataset(tmp_path / "data", n=20)
    mmcli = [sys.executable, "-m", "mmcli"]
    for name, extra in (("local", ["-j", "1"]), ("dask", ["--executor", "dask", "-j", "2"])):
        ran = subprocess.run([*mmcli, "preprocess", str(manifest), "-o", str(tmp_path / name),
                              "-q", *extra], capture_output=True, text=True, timeout=300)
        assert ran.returncode == 0 and ran.stderr == "", ran.stderr
    _same_tree(tmp_path / "local", tmp_path / "dask")
