"""Global output options: --log-format json, --verbose, --quiet, --strict (exit 6)."""

from __future__ import annotations

import json

from tests.cli.helpers import read_rows, run, write_rows


def with_missing_image(dataset):
    rows = read_rows(dataset)
    rows[3]["image"] = "media/nowhere.png"
    return write_rows(dataset.parent / "one_bad.csv", rows)


def test_json_log_lines(dataset, tmp_path):
    result = run("--log-format", "json", "preprocess", dataset, "-o", tmp_path / "pre", "-j", "1")
    assert result.exit_code == 0
    records = [json.loads(line) for line in result.stderr.splitlines()]
    assert any(r.get("event") == "progress" and r["total"] == 36 for r in records)
    assert any("36 of 36 items kept" in r.get("message", "") for r in records)
    bad = run("--log-format", "json", "fuse", tmp_path / "pre", "-o", tmp_path / "x")
    assert bad.exit_code == 4
    (record,) = [json.loads(line) for line in bad.stderr.splitlines()]
    assert record["level"] == "error" and "needs an 'extract' one" in record["message"]


def test_bad_log_format_is_a_usage_error(dataset, tmp_path):
    result = run("--log-format", "xml", "preprocess", dataset, "-o", tmp_path / "pre")
    assert result.exit_code == 2 and "xml" in result.stderr


def test_verbose_lists_items_left_out_and_strict_exits_6(dataset, tmp_path):
    manifest = with_missing_image(dataset)
    quiet = run("preprocess", manifest, "-o", tmp_path / "a", "-j", "1")
    assert quiet.exit_code == 0 and "column 'image'" not in quiet.stderr
    verbose = run("-v", "preprocess", manifest, "-o", tmp_path / "b", "-j", "1")
    assert verbose.exit_code == 0
    # the row keeps its other modalities (docs/missing.md): kept, not left out
    assert "info: row 4 (id item0003) kept without column 'image': file not found" \
        in verbose.stderr
    assert run("--strict", "preprocess", manifest, "-o", tmp_path / "k", "-j", "1"
               ).exit_code == 0
    config = tmp_path / "drop.yaml"
    config.write_text("preprocess:\n  missing: {image: drop}\n")
    verbose = run("-v", "preprocess", manifest, "-c", config, "-o", tmp_path / "v", "-j", "1")
    assert "info: row 4 (id item0003) left out: column 'image': file not found" in verbose.stderr
    strict = run("--strict", "preprocess", manifest, "-c", config, "-o", tmp_path / "c",
                 "-j", "1")
    assert strict.exit_code == 6
    assert "1 item(s) were left out" in strict.stderr
    assert (tmp_path / "c" / "meta.json").exists()  # the output is complete all the same
    assert run("--strict", "preprocess", dataset, "-o", tmp_path / "d", "-j", "1").exit_code == 0


def test_global_quiet(dataset, tmp_path):
    result = run("-q", "preprocess", dataset, "-o", tmp_path / "pre", "-j", "1")
    assert result.exit_code == 0 and result.stderr == "" and result.stdout == ""
