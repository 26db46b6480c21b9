"""preprocess.group through the chain: items carry their group from preprocess to fuse, no
group is in two splits, and predict does not need the group column."""

from __future__ import annotations

import csv
import logging
from collections import Counter
from pathlib import Path

import pytest

from mmcli import artifacts
from mmcli.config import ExtractConfig, FuseConfig, PredictConfig, PreprocessConfig, TrainConfig
from mmcli.errors import DataError, UsageError
from mmcli.stages import extract, fuse, predict, preprocess, train
from mmcli.testing.dummies import make_dataset

N = 36


def pre_config(**kw) -> PreprocessConfig:
    return PreprocessConfig(**{"jobs": 1, "image_size": [16, 16], **kw})


def rewrite(manifest: Path, name: str, change) -> Path:
    """A copy of ``manifest`` (next to it, so media paths still resolve) with ``change``
    applied to its rows (a list of dicts, changed in place)."""
    with open(manifest, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    change(rows)
    path = manifest.parent / name
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def add_speakers(rows: list[dict]) -> None:
    # clips cut from a few long recordings: the group is the recording's file name, a value
    # that would be detected as an audio column if it were not the group
    for k, row in enumerate(rows):
        row["speaker"] = "" if k % 10 == 9 else f"rec{k % 7}.wav"


def items(directory: Path) -> list[dict]:
    return artifacts.read_jsonl(directory / "items.jsonl")


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    root = tmp_path_factory.mktemp("groups")
    manifest = rewrite(make_dataset(root / "data", n=N), "grouped.csv", add_speakers)
    runs = root / "runs"
    summary = preprocess(manifest, runs / "pre", pre_config(group="speaker"))
    extract(runs / "pre", runs / "ext", ExtractConfig(jobs=1))
    fuse(runs / "ext", runs / "fused", FuseConfig())
    return manifest, runs, summary


def test_every_stage_carries_the_group(chain):
    manifest, runs, summary = chain
    with open(manifest, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    expected = {r["id"]: r["speaker"] or f"id:{r['id']}" for r in rows}
    for stage in ("pre", "ext", "fused"):
        got = items(runs / stage)
        assert len(got) == N
        assert {it["id"]: it["group"] for it in got} == expected, stage
    split_of: dict[str, set] = {}
    for it in items(runs / "fused"):
        split_of.setdefault(it["group"], set()).add(it["split"])
    assert all(len(s) == 1 for s in split_of.values())
    per_split = Counter(s for splits in split_of.values() for s in splits)
    assert summary["groups"] == dict(per_split) and sum(per_split.values()) == 7 + 3


def test_the_group_column_is_no_feature(chain):
    _, runs, summary = chain
    assert "speaker" not in summary["columns"]
    blocks = artifacts.read_json(runs / "ext" / "blocks.json")
    assert [b["column"] for b in blocks] == ["image", "audio", "text", "value"]
    assert all("speaker" not in it["values"] for it in items(runs / "pre"))


def test_predict_without_the_group_column(chain, tmp_path):
    manifest, runs, _ = chain
    train(runs / "fused", tmp_path / "model", TrainConfig(model="logreg"))
    plain = rewrite(manifest, "plain.csv",
                    lambda rows: [r.pop(c) for r in rows for c in ("speaker", "label")])
    summary = predict(tmp_path / "model", plain, tmp_path / "pred", PredictConfig(jobs=1))
    assert summary["predicted"] == N and summary["failed"] == 0


def test_without_group_items_have_no_group_key(tmp_path):
    manifest = make_dataset(tmp_path / "data", n=12)
    preprocess(manifest, tmp_path / "pre", pre_config())
    assert all("group" not in it for it in items(tmp_path / "pre"))
    meta = artifacts.read_json(tmp_path / "pre" / "meta.json")
    assert meta["config"]["group"] is None and meta["config"]["split_key"] == "label_id"
    assert "groups" not in meta["summary"]


@pytest.mark.parametrize("group, error, words", [
    ("spkr", DataError, ["group column 'spkr'", "columns: id, image"]),
    ("label", UsageError, ["'label' is the label column"]),
    ("split", UsageError, ["'split' is the split column"]),
    (3, UsageError, ["preprocess.group is 3"]),
])
def test_bad_group_column(chain, tmp_path, group, error, words):
    manifest, _, _ = chain
    with pytest.raises(error) as exc:
        preprocess(manifest, tmp_path / "pre", pre_config(group=group))
    assert all(w in str(exc.value) for w in words), str(exc.value)
    assert not (tmp_path / "pre").exists()


def test_split_key_id_keeps_items_when_a_label_is_corrected(tmp_path):
    manifest = make_dataset(tmp_path / "data", n=12)
    fixed = rewrite(manifest, "fixed.csv",
                    lambda rows: [r.update(label="green") for r in rows if r["label"] == "red"])
    split_of = {}
    for name, path in (("a", manifest), ("b", fixed)):
        pre = preprocess(path, tmp_path / name, pre_config(split_key="id", group=None))
        assert pre["kept"] == 12
        split_of[name] = {it["id"]: it["split"] for it in items(tmp_path / name)}
    assert split_of["a"] == split_of["b"]


def test_warning_without_id_column(tmp_path, caplog):
    manifest = make_dataset(tmp_path / "data", n=12)
    no_ids = rewrite(manifest, "no_ids.csv", lambda rows: [r.pop("id") for r in rows])
    with caplog.at_level(logging.WARNING, logger="mmcli"):
        preprocess(no_ids, tmp_path / "pre", pre_config())
        preprocess(manifest, tmp_path / "pre2", pre_config())
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "no_ids.csv has no id column" in warnings[0] and "add an id column" in warnings[0]


def test_warning_when_the_split_column_puts_a_group_in_two_splits(tmp_path, caplog):
    manifest = make_dataset(tmp_path / "data", n=12, with_split=True)
    grouped = rewrite(manifest, "grouped.csv", add_speakers)
    with caplog.at_level(logging.WARNING, logger="mmcli"):
        preprocess(grouped, tmp_path / "pre", pre_config(group="speaker"))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "of column 'speaker' are in more than one split" in warnings[0]
    with open(manifest, encoding="utf-8", newline="") as f:
        given = {r["id"]: r["split"] for r in csv.DictReader(f)}
    assert {it["id"]: it["split"] for it in items(tmp_path / "pre")} == given
    assert all("group" in it for it in items(tmp_path / "pre"))


def test_run_pipeline_records_and_fingerprints_the_group(chain, tmp_path):
    from mmcli.stages.run import run_pipeline

    manifest, _, _ = chain
    path = tmp_path / "pipeline.yaml"
    path.write_text(f"pipeline: {{manifest: {manifest}, workdir: {tmp_path / 'work'}}}\n"
                    "preprocess: {jobs: 1, group: speaker, image_size: [16, 16]}\n"
                    "extract: {jobs: 1}\ntrain: {model: logreg}\neval: {bootstrap: 0}\n")
    assert {r.action for r in run_pipeline(path)} == {"ran"}
    assert {r.action for r in run_pipeline(path, dry_run=True)} == {"skipped"}
    assert all("group" in it for it in items(tmp_path / "work" / "fused"))
    for key in ("split_key: id", "split_key: label_id, group: null"):
        path.write_text(path.read_text().replace("group: speaker", key))
        plan = run_pipeline(path, dry_run=True)
        assert (plan[0].action, plan[0].reason) == ("would run", "config changed"), key
        path.write_text(path.read_text().replace(key, "group: speaker"))
