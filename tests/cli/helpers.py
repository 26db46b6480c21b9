"""Run mmcli in-process like a user would, and check what the user sees."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

from typer.testing import CliRunner, Result

from mmcli.cli.app import app


def run(*args, env: dict | None = None) -> Result:
    """``mmcli ARGS...`` with stdout and stderr captured separately (neither is a terminal)."""
    return CliRunner().invoke(app, [str(a) for a in args], prog_name="mmcli", env=env)


def ok(*args) -> Result:
    """Run a command that must succeed."""
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert "error:" not in result.stderr, result.stderr
    return result


def fails(code: int, *args) -> str:
    """Run a command that must fail with ``code``; returns its one ``error:`` line."""
    result = run(*args)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert result.stderr.rstrip("\n").splitlines()[-1] == errors[0], result.stderr
    return errors[0]


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def write_rows(path: Path, rows: list[dict], columns: list[str] | None = None) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, columns or list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def file_hashes(directory: Path) -> dict[str, str]:
    """sha256 of every file under ``directory``, keyed by relative path."""
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(directory).rglob("*")) if p.is_file()}
