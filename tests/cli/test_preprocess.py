"""mmcli preprocess: manifests in, a preprocess directory out; bad manifests exit 3."""

from __future__ import annotations

import json

import numpy as np

from mmcli.testing.dummies import make_dataset

from .helpers import fails, file_hashes, ok, read_rows, run, write_rows


def items(directory) -> list[dict]:
    lines = (directory / "items.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_success_writes_the_stage_directory(dataset, tmp_path):
    out = tmp_path / "runs" / "pre"
    result = ok("preprocess", dataset, "-o", out, "--jobs", "1")

    for rel in ("meta.json", "items.jsonl", "failures.csv", "state/preprocess.json",
                "data/image.npy", "data/audio.npy", "data/audio.offsets.npy", "data/value.npy"):
        assert (out / rel).is_file(), rel
    meta = json.loads((out / "meta.json").read_text())
    assert meta["stage"] == "preprocess"
    # how it ran (jobs, executor, scheduler) never changes the output: not recorded
    assert not {"jobs", "executor", "scheduler"} & set(meta["config"])
    assert len(items(out)) == 36
    assert read_rows(out / "failures.csv") == []
    assert result.stdout == ""
    assert "preprocess: 36 of 36 items kept" in result.stderr
    assert "0 left out" in result.stderr
    assert "image (image), audio (audio), text (text), value (numeric)" in result.stderr
    assert "classes: blue, green, red" in result.stderr
    assert f"wrote {out}" in result.stderr
    assert [p.name for p in out.parent.iterdir()] == ["pre"]  # no temporary left over


def test_progress_is_plain_lines_on_stderr_when_not_a_terminal(dataset, tmp_path):
    result = ok("preprocess", dataset, "-o", tmp_path / "pre", "-j", "1")
    assert "preprocess: 36/36 (100%)" in result.stderr
    assert "\x1b[" not in result.output  # no terminal escapes when not a terminal


def test_quiet_prints_nothing(dataset, tmp_path):
    result = ok("preprocess", dataset, "-o", tmp_path / "pre", "-j", "1", "--quiet")
    assert result.output == ""
    assert (tmp_path / "pre" / "meta.json").is_file()


def test_jsonl_manifest(tmp_path):
    manifest = make_dataset(tmp_path / "data", n=36, fmt="jsonl")
    ok("preprocess", manifest, "-o", tmp_path / "pre", "-j", "1")
    assert len(items(tmp_path / "pre")) == 36


def test_missing_manifest_exits_3(tmp_path):
    line = fails(3, "preprocess", tmp_path / "nope.csv", "-o", tmp_path / "pre")
    assert "nope.csv does not exist" in line
    assert not (tmp_path / "pre").exists()


def test_manifest_without_the_label_column_exits_3(tmp_path):
    manifest = make_dataset(tmp_path / "data", n=12, with_label=False)
    line = fails(3, "preprocess", manifest, "-o", tmp_path / "pre")
    assert "label column 'label'" in line
    assert "--label" in line
    assert not (tmp_path / "pre").exists()


def test_custom_label_column(dataset, tmp_path):
    rows = read_rows(dataset)
    renamed = [{("category" if k == "label" else k): v for k, v in r.items()} for r in rows]
    manifest = write_rows(dataset.parent / "renamed.csv", renamed)

    line = fails(3, "preprocess", manifest, "-o", tmp_path / "pre")
    assert "'label'" in line and "category" in line  # names the column and those there are

    ok("preprocess", manifest, "-o", tmp_path / "pre", "--label", "category", "-j", "1")
    state = json.loads((tmp_path / "pre" / "state" / "preprocess.json").read_text())
    assert state["label"] == "category"
    assert "category" not in state["columns"]  # the label is not a modality
    assert {it["label"] for it in items(tmp_path / "pre")} == {"red", "green", "blue"}


def test_header_only_manifest_exits_3(tmp_path):
    manifest = tmp_path / "header.csv"
    manifest.write_text("id,image,text,label\n", encoding="utf-8")
    line = fails(3, "preprocess", manifest, "-o", tmp_path / "pre")
    assert "header.csv has no rows" in line


def test_empty_manifest_exits_3(tmp_path):
    manifest = tmp_path / "empty.csv"
    manifest.write_text("", encoding="utf-8")
    line = fails(3, "preprocess", manifest, "-o", tmp_path / "pre")
    assert "empty.csv is empty" in line


def test_duplicate_ids_exit_3_and_name_both_rows(dataset, tmp_path):
    rows = read_rows(dataset)
    write_rows(dataset, [*rows, dict(rows[4])])
    line = fails(3, "preprocess", dataset, "-o", tmp_path / "pre")
    assert "duplicate id 'item0004'" in line
    assert "rows 5 and 37" in line


def test_bad_media_cells_are_listed_and_their_rows_kept_or_dropped(dataset, tmp_path):
    rows = read_rows(dataset)
    media = dataset.parent / "media"
    (media / "broken.png").write_bytes(b"this is not a png")
    (media / "broken.wav").write_bytes(b"RIFF....WAVEnot really")
    rows[2]["image"] = "media/missing.png"
    rows[5]["image"] = "media/broken.png"
    rows[9]["audio"] = "media/broken.wav"
    write_rows(dataset, rows)

    result = ok("preprocess", dataset, "-o", tmp_path / "keep", "-j", "1")
    assert "36 of 36 items kept" in result.stderr
    assert "missing modalities in kept items: audio 1, image 2" in result.stderr
    kept = read_rows(tmp_path / "keep" / "failures.csv")
    assert [(f["row"], f["column"]) for f in kept] == [("3", "image"), ("6", "image"),
                                                       ("10", "audio")]
    assert all(f["reason"].startswith("kept: ") for f in kept)

    # columns that must be present: today's behaviour, the rows are left out
    config = tmp_path / "drop.yaml"
    config.write_text("preprocess: {missing: {image: drop, audio: drop}}\n")
    out = tmp_path / "pre"
    result = ok("preprocess", dataset, "-o", out, "-j", "1", "-c", config)
    assert "33 of 36 items kept" in result.stderr
    assert "3 left out" in result.stderr

    failures = read_rows(out / "failures.csv")
    assert [(f["row"], f["id"], f["column"]) for f in failures] == [
        ("3", "item0002", "image"), ("6", "item0005", "image"), ("10", "item0009", "audio")]
    assert "file not found" in failures[0]["reason"]
    assert "cannot decode image" in failures[1]["reason"]
    assert "cannot decode audio" in failures[2]["reason"]
    kept = [it["id"] for it in items(out)]
    assert len(kept) == 33
    assert not {"item0002", "item0005", "item0009"} & set(kept)


def test_too_many_failures_exit_3_and_leave_nothing(dataset, tmp_path):
    rows = read_rows(dataset)
    for row in rows[:5]:  # 5 of 36 is more than the default max_failed_fraction 0.1
        row["image"] = "media/missing.png"
    write_rows(dataset, rows)

    runs = tmp_path / "runs"
    (tmp_path / "drop.yaml").write_text("preprocess: {missing: {image: drop}}\n")
    line = fails(3, "preprocess", dataset, "-o", runs / "pre", "-j", "1",
                 "-c", tmp_path / "drop.yaml")
    assert "5 of 36 items" in line
    assert "max_failed_fraction" in line
    assert "row 1, column 'image'" in line
    assert list(runs.iterdir()) == []  # neither the output nor its temporary

    (tmp_path / "lenient.yaml").write_text(
        "preprocess: {max_failed_fraction: 0.2, missing: {image: drop}}\n")
    ok("preprocess", dataset, "-o", runs / "pre", "-j", "1", "-c", tmp_path / "lenient.yaml")
    assert len(items(runs / "pre")) == 31


def test_failed_rerun_keeps_the_previous_output(dataset, tmp_path):
    out = tmp_path / "pre"
    ok("preprocess", dataset, "-o", out, "-j", "1")
    before = file_hashes(out)
    rows = read_rows(dataset)
    for row in rows[:10]:
        row["audio"] = "media/missing.wav"
    write_rows(dataset, rows)
    (tmp_path / "drop.yaml").write_text("preprocess: {missing: {audio: drop}}\n")
    fails(3, "preprocess", dataset, "-o", out, "-j", "1", "-c", tmp_path / "drop.yaml")
    assert file_hashes(out) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "data") == [
        "drop.yaml", "pre"]


def test_seed_changes_the_split_and_same_seed_repeats_it(dataset, tmp_path):
    def splits(seed: str, name: str) -> dict[str, str]:
        out = tmp_path / name
        ok("preprocess", dataset, "-o", out, "-j", "1", "--seed", seed, "-q")
        return {it["id"]: it["split"] for it in items(out)}

    first = splits("0", "a")
    assert splits("0", "b") == first
    other = splits("1", "c")
    assert other.keys() == first.keys()
    assert other != first


def test_config_is_honoured_and_flags_override_it(dataset, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("seed: 5\npreprocess:\n  numeric_scaling: minmax\n  image_size: [8, 8]\n")
    out = tmp_path / "pre"
    ok("preprocess", dataset, "-o", out, "-c", config, "--seed", "7", "-j", "1")
    meta = json.loads((out / "meta.json").read_text())
    assert meta["seed"] == 7
    assert meta["config"]["seed"] == 7
    assert meta["config"]["numeric_scaling"] == "minmax"
    assert np.load(out / "data" / "image.npy").shape == (36, 8, 8, 3)


def test_unknown_config_key_exits_2_with_a_suggestion(dataset, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("preprocess: {numeric_scalling: minmax}\n")
    line = fails(2, "preprocess", dataset, "-o", tmp_path / "pre", "-c", config)
    assert "unknown key 'numeric_scalling'" in line
    assert "did you mean 'numeric_scaling'?" in line

    config.write_text("preprocesss: {}\n")
    line = fails(2, "preprocess", dataset, "-o", tmp_path / "pre", "-c", config)
    assert "did you mean 'preprocess'?" in line


def test_config_that_is_not_yaml_exits_2(dataset, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("preprocess: [unclosed\n  seed: {\n")
    line = fails(2, "preprocess", dataset, "-o", tmp_path / "pre", "-c", config)
    assert "is not valid YAML" in line

    line = fails(2, "preprocess", dataset, "-o", tmp_path / "pre", "-c", tmp_path / "no.yaml")
    assert "no.yaml does not exist" in line


def test_bad_config_value_exits_2(dataset, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("preprocess: {numeric_scaling: zscore}\n")
    line = fails(2, "preprocess", dataset, "-o", tmp_path / "pre", "-c", config)
    assert "numeric_scaling" in line and "minmax" in line


def test_out_that_is_not_a_stage_directory_exits_4(dataset, tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    line = fails(4, "preprocess", dataset, "-o", tmp_path / "notes")
    assert "is not an mmcli stage directory" in line
    assert (tmp_path / "notes" / "keep.txt").read_text() == "mine"

    (tmp_path / "file").write_text("mine")
    line = fails(4, "preprocess", dataset, "-o", tmp_path / "file")
    assert "is not an mmcli stage directory" in line


def test_rerun_replaces_the_previous_output(dataset, tmp_path):
    out = tmp_path / "pre"
    ok("preprocess", dataset, "-o", out, "-j", "1", "-q")
    (out / "stale.txt").write_text("from before")
    result = run("preprocess", dataset, "-o", out, "-j", "1", "-q")
    assert result.exit_code == 0
    assert not (out / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "pre"]


def test_executor_settings_are_checked_before_any_work(tmp_path, dataset, monkeypatch):
    from mmcli import parallel

    out = tmp_path / "pre"
    assert "use 'local' or 'dask'" in fails(2, "preprocess", dataset, "-o", out,
                                            "--executor", "spark")
    assert "add --executor dask" in fails(2, "preprocess", dataset, "-o", out,
                                          "--scheduler", "tcp://127.0.0.1:9")
    monkeypatch.setattr(parallel, "CONNECT_TIMEOUT", "1s")
    line = fails(5, "preprocess", dataset, "-o", out, "--executor", "dask",
                 "--scheduler", "tcp://127.0.0.1:9")
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in line
    assert "dask scheduler" in line
    assert not out.exists()


def test_group_keeps_each_speaker_in_one_split(dataset, tmp_path):
    rows = read_rows(dataset)
    for k, row in enumerate(rows):
        row["speaker"] = f"spk{k % 6}"
    grouped = write_rows(dataset.parent / "grouped.csv", rows)
    out = tmp_path / "pre"
    result = ok("preprocess", grouped, "-o", out, "-j", "1", "--group", "speaker")
    assert "groups (speaker): " in result.stderr and "warning: " not in result.stderr
    split_of = {}
    for it in items(out):
        assert split_of.setdefault(it["group"], it["split"]) == it["split"]
    assert sorted(split_of) == [f"spk{k}" for k in range(6)]
    line = fails(3, "preprocess", grouped, "-o", tmp_path / "x", "--group", "spkr")
    assert line == (f"error: group column 'spkr' is not in {grouped} (columns: id, image, "
                    "audio, text, value, label, speaker) (pass --group COL naming a column, "
                    "or drop --group)")


def test_warning_when_ids_are_row_numbers(dataset, tmp_path):
    rows = read_rows(dataset)
    for row in rows:
        del row["id"]
    no_ids = write_rows(dataset.parent / "no_ids.csv", rows)
    result = ok("preprocess", no_ids, "-o", tmp_path / "pre", "-j", "1")
    warnings = [w for w in result.stderr.splitlines() if w.startswith("warning: ")]
    assert warnings == [f"warning: {no_ids} has no id column: items are numbered by row, so "
                        "deleting or inserting a row moves later items to other splits; add "
                        "an id column of stable, unique ids"]
    assert "warning: " not in ok("preprocess", dataset, "-o", tmp_path / "b", "-j", "1").stderr
