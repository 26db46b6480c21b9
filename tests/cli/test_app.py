"""The top-level app: help, version, unknown commands, and the error -> exit code mapping."""

from __future__ import annotations

import importlib

import pytest

from mmcli import __version__

from .helpers import fails, ok, run

COMMANDS = ["preprocess", "extract", "fuse", "train", "eval", "predict"]


def test_no_arguments_shows_help_with_every_command():
    import click.exceptions

    result = run()
    # click 8.2 made help for no arguments a usage error (exit 2); before, it exited 0
    expected = 2 if hasattr(click.exceptions, "NoArgsIsHelpError") else 0
    assert result.exit_code == expected
    assert "Usage: mmcli" in result.output
    for command in COMMANDS:
        assert command in result.output
    assert "Traceback" not in result.output


def test_version():
    result = ok("--version")
    assert result.stdout == f"mmcli {__version__}\n"


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_of_every_command_has_an_example(command, flag):
    result = ok(command, flag)
    assert f"Usage: mmcli {command}" in result.stdout
    assert "Example:" in result.stdout
    example = result.stdout.split("Example:", 1)[1]
    assert f"mmcli {command} " in example
    assert "--out" in result.stdout


def test_unknown_command_suggests_the_closest():
    result = run("fusee", "x")
    assert result.exit_code == 2
    assert "fuse" in result.stderr
    assert "Traceback" not in result.output


def test_missing_out_option_is_a_usage_error(pipeline):
    result = run("extract", pipeline.pre)
    assert result.exit_code == 2
    assert "--out" in result.stderr
    assert "Traceback" not in result.output


def test_unexpected_exception_is_one_line_exit_1(pipeline, tmp_path, monkeypatch):
    # the module, not the function of the same name that mmcli.stages re-exports
    fuse_module = importlib.import_module("mmcli.stages.fuse")
    def boom(*args, **kwargs):
        raise ValueError("boom\nsecond line")

    monkeypatch.setattr(fuse_module, "fuse", boom)
    monkeypatch.delenv("MMCLI_DEBUG", raising=False)
    line = fails(1, "fuse", pipeline.feat, "-o", tmp_path / "fused")
    assert "internal error: ValueError: boom" in line
    assert "second line" not in line
    assert "MMCLI_DEBUG=1" in line

    result = run("fuse", pipeline.feat, "-o", tmp_path / "fused", env={"MMCLI_DEBUG": "1"})
    assert result.exit_code == 1
    assert "Traceback" in result.stderr


def test_keyboard_interrupt_exits_130(pipeline, tmp_path, monkeypatch):
    # the module, not the function of the same name that mmcli.stages re-exports
    fuse_module = importlib.import_module("mmcli.stages.fuse")
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(fuse_module, "fuse", interrupted)
    line = fails(130, "fuse", pipeline.feat, "-o", tmp_path / "fused")
    assert "interrupted" in line
    assert not (tmp_path / "fused").exists()


BLAS_THREADS = """
import sys
from mmcli.cli.app import main
sys.argv = ["mmcli", "--version"]
try:
    main()
except SystemExit:
    pass
import numpy  # noqa: F401  (loaded after the command line started, as in a stage)
from threadpoolctl import threadpool_info
print(sorted({i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}))
"""


@pytest.mark.parametrize("env, threads", [({}, "[1]"), ({"OPENBLAS_NUM_THREADS": "2"}, "[2]")])
def test_the_command_line_runs_blas_on_one_thread_unless_told(env, threads):
    """A stage's own process gets one OpenBLAS thread, as its workers do; a value the user
    set wins."""
    import os
    import subprocess
    import sys

    base = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", BLAS_THREADS], env={**base, **env},
                         capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[-2] == threads
