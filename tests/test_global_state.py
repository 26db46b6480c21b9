"""A program that calls the stages several times in one process sees no state left by the
earlier calls: no module-level dict, list or set of mmcli changes across a call, and the
process-wide settings (csv's field size limit, the environment, ``__main__``) are as before.

With one worker (``jobs: 1``) the worker initialisers run in the caller's process; before
the fix their dicts (preprocess's ``_SPEC``, extract's ``_WORKER`` with the plan and open
files of the input) kept the last stage's state, and reading a manifest raised csv's field
size limit for the whole process.
"""

from __future__ import annotations

import copy
import csv
import os
import sys

from mmcli.config import ExtractConfig, PredictConfig, PreprocessConfig, TrainConfig
from mmcli.stages import extract, fuse, predict, preprocess, train
from mmcli.testing.dummies import make_dataset


def chain(root, seed: int) -> None:
    manifest = make_dataset(root / "data", n=9, seed=seed)
    preprocess(manifest, root / "pre", PreprocessConfig(jobs=1))
    extract(root / "pre", root / "feat", ExtractConfig(jobs=1))
    fuse(root / "feat", root / "fused")
    train(root / "fused", root / "model", TrainConfig(model="logreg"))
    predict(root / "model", manifest, root / "pred", PredictConfig(jobs=1))


def module_state() -> dict:
    """A copy of every module-level dict, list and set of the loaded mmcli modules."""
    state = {}
    for name, module in sorted(sys.modules.items()):
        if name != "mmcli" and not name.startswith("mmcli."):
            continue
        for key, value in vars(module).items():
            if type(value) in (dict, list, set) and not key.startswith("__"):
                state[f"{name}.{key}"] = copy.copy(value)
    return state


def process_state() -> dict:
    main = sys.modules["__main__"]
    return {"csv.field_size_limit": csv.field_size_limit(), "os.environ": dict(os.environ),
            "__main__": {k: getattr(main, k, None) for k in ("__file__", "__spec__")}}


def changed(before: dict, after: dict) -> list[str]:
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


def test_stages_leave_no_state_behind(tmp_path):
    chain(tmp_path / "first", seed=0)  # imports everything the stages use
    modules, process = module_state(), process_state()
    chain(tmp_path / "second", seed=1)
    assert changed(modules, module_state()) == []
    assert changed(process, process_state()) == []


def test_reading_a_manifest_keeps_the_csv_limit(tmp_path):
    from mmcli.manifest import read_manifest

    manifest = make_dataset(tmp_path / "data", n=3)
    saved = csv.field_size_limit(131072)  # csv's default, whatever ran before
    try:
        read_manifest(manifest)
        assert csv.field_size_limit() == 131072
    finally:
        csv.field_size_limit(saved)


def test_the_cli_run_in_process_leaves_logging_and_output_mode_as_they_were(tmp_path):
    import logging

    from typer.testing import CliRunner

    from mmcli.cli import console
    from mmcli.cli.app import app

    logger = logging.getLogger("mmcli")
    before = (list(logger.handlers), logger.propagate, logger.level)
    mode = dict(console._state)
    manifest = make_dataset(tmp_path / "data", n=6)
    result = CliRunner().invoke(app, ["-q", "--log-format", "json", "preprocess", str(manifest),
                                      "-o", str(tmp_path / "pre"), "--jobs", "1"])
    assert result.exit_code == 0, result.output
    assert (list(logger.handlers), logger.propagate, logger.level) == before
    assert console._state == mode
