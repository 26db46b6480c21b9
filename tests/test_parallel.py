"""Worker pools: ordered results whatever the number of workers, and library calls from a
script without a main guard (or from stdin) work: workers never re-run the caller's script."""

from __future__ import annotations

import subprocess
import sys

from mmcli.parallel import chunks, ordered_map, worker_pool, worker_state
from mmcli.testing.dummies import make_dataset


def _square(x: int) -> int:
    return x * x


def test_ordered_map_keeps_order_with_two_workers():
    tasks = list(range(40))
    assert list(ordered_map(_square, tasks, 2)) == [x * x for x in tasks]
    assert list(ordered_map(_square, tasks, 1)) == [x * x for x in tasks]


_INIT = worker_state()


def _set_offset(offset: int) -> None:
    _INIT["offset"] = offset
    _INIT["calls"] = _INIT.get("calls", 0) + 1


def _offset_and_calls(x: int) -> tuple[int, int, int]:
    import os

    return x + _INIT["offset"], _INIT["calls"], os.getpid()


def test_worker_pool_keeps_its_workers_and_their_state_across_maps():
    for jobs in (1, 2):
        with worker_pool(jobs, _set_offset, (100,)) as run:
            first = list(run(_offset_and_calls, range(10)))
            second = list(run(_offset_and_calls, range(10, 20)))
        assert [r[0] for r in first + second] == list(range(100, 120))
        assert {r[1] for r in first + second} == {1}  # the initializer ran once per worker
        # the same workers for both maps (a pool per map would fork up to 2 x jobs)
        assert len({r[2] for r in first + second}) <= jobs
    assert _INIT == {}  # a map in this process leaves no state behind


def test_chunks():
    assert chunks(5, 2) == [(0, 2), (2, 4), (4, 5)]
    assert chunks(0, 3) == []


SCRIPT = """
from mmcli.config import PreprocessConfig
from mmcli.stages import preprocess
preprocess({manifest!r}, {out!r}, PreprocessConfig(jobs=2))
print("done")
"""


def test_stage_from_a_script_without_main_guard_and_from_stdin(tmp_path):
    manifest = make_dataset(tmp_path / "data", n=70)  # more than one chunk: a real pool
    script = tmp_path / "no_guard.py"
    script.write_text(SCRIPT.format(manifest=str(manifest), out=str(tmp_path / "a")))
    ran = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=300)
    assert ran.returncode == 0 and ran.stdout.count("done") == 1, ran.stderr
    piped = subprocess.run([sys.executable, "-"], capture_output=True, text=True, timeout=300,
                           input=SCRIPT.format(manifest=str(manifest), out=str(tmp_path / "b")))
    assert piped.returncode == 0 and piped.stdout.count("done") == 1, piped.stderr
    a, b = (tmp_path / d / "meta.json" for d in "ab")
    assert a.read_bytes() == b.read_bytes()


def test_bounded_keeps_the_window_and_the_data_budget():
    """At most ``window`` tasks in flight, fewer while those in flight hold enough data (one
    always runs), results in order."""
    from mmcli.parallel import _bounded

    in_flight: list[int] = []
    most = []

    def submit(task):
        in_flight.append(task)
        most.append(len(in_flight))
        return task

    def result(future, task):
        in_flight.remove(task)
        return task * 10

    assert list(_bounded(submit, range(20), 4, result)) == [t * 10 for t in range(20)]
    assert max(most) == 4
    most.clear()
    weights = {t: (100 if t % 3 == 0 else 1) for t in range(20)}  # every third task is big
    full = lambda: sum(weights[t] for t in in_flight) >= 100  # noqa: E731
    assert list(_bounded(submit, range(20), 4, result, full)) == [t * 10 for t in range(20)]
    assert max(most) <= 4 and most[:2] == [1, 1]  # the big first task ran alone


def test_preprocess_starts_its_workers_before_checking_the_files(tmp_path, monkeypatch):
    """The fork server boots while preprocess checks the manifest and its files' stamps
    (a killed run's rerun waited for it after them), and only when workers will decode
    (more than one chunk)."""
    import importlib

    from mmcli.config import PreprocessConfig

    module = importlib.import_module("mmcli.stages.preprocess")
    events: list[str] = []
    inputs = module.manifest_inputs
    monkeypatch.setattr(module, "start_workers", lambda runtime, modules=(): events.append(
        "workers"))
    monkeypatch.setattr(module, "manifest_inputs",
                        lambda *a: events.append("stamps") or inputs(*a))
    manifest = make_dataset(tmp_path / "data", n=20)
    module.preprocess(manifest, tmp_path / "one", PreprocessConfig(jobs=1))
    assert events == ["stamps"]  # one chunk: decoded here
    events.clear()
    monkeypatch.setattr(module, "CHUNK", 8)
    module.preprocess(manifest, tmp_path / "three", PreprocessConfig(jobs=1))
    assert events == ["workers", "stamps"]
