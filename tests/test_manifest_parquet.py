"""Parquet manifests (files and partitioned folders) and predictions.parquet."""

from __future__ import annotations

import csv
import json
import sys

import pytest

from mmcli.errors import DataError, UsageError
from mmcli.manifest import column_kinds, manifest_digest, read_manifest
from mmcli.testing.dummies import make_dataset

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def to_parquet(manifest, path, row_group_size=7, **changes):
    """The CSV manifest as Parquet, ``value`` as float64 (plus or instead of ``changes``)."""
    with open(manifest, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    columns = {c: [r[c] for r in rows] for c in rows[0]}
    columns["value"] = [float(v) for v in columns["value"]]
    columns.update(changes)
    pq.write_table(pa.table(columns), path, row_group_size=row_group_size)
    return path


def test_a_parquet_file_reads_like_its_csv(tmp_path):
    manifest = make_dataset(tmp_path, n=20)
    parquet = to_parquet(manifest, tmp_path / "m.parquet")
    a, b = read_manifest(parquet), read_manifest(manifest)
    assert a.columns == b.columns and len(a.rows) == len(b.rows) == 20
    for x, y in zip(a.rows, b.rows):  # several row groups, in order
        assert x | {"value": None} == y | {"value": None}
        assert float(x["value"]) == float(y["value"])  # '1.319' (shortest) vs '1.3190'
    assert a.types["value"] == "double" and a.types["image"] == "string" and b.types == {}
    assert column_kinds(a, "label", {}) == column_kinds(b, "label", {})
    assert a.resolve(a.rows[0]["image"]) == tmp_path / "media" / "item0000.png"


def test_column_kinds_come_from_the_schema(tmp_path):
    manifest = make_dataset(tmp_path, n=10)
    parquet = to_parquet(manifest, tmp_path / "m.parquet",
                         empty=pa.array([None] * 10, pa.float64()),  # text, were it CSV
                         flag=[k % 2 == 0 for k in range(10)],
                         code=pa.array([str(k) for k in range(10)]))  # strings: detected
    m = read_manifest(parquet)
    kinds = column_kinds(m, "label", {})
    assert (kinds["empty"], kinds["flag"], kinds["code"]) == ("numeric", "categorical",
                                                              "numeric")
    assert m.rows[0]["empty"] == "" and m.rows[0]["flag"] == "true"
    with pytest.raises(DataError, match="'value' is of type double, but preprocess.columns "
                                        "makes it image"):
        column_kinds(m, "label", {"value": "image"})


def test_a_partitioned_folder_is_one_manifest(tmp_path):
    manifest = make_dataset(tmp_path, n=12)
    with open(manifest, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    folder = tmp_path / "ds.parquet"  # as Spark names it; media stay relative to tmp_path
    for split in ("train", "test"):
        part = [r for k, r in enumerate(rows) if (k < 9) == (split == "train")]
        (folder / f"split={split}").mkdir(parents=True)
        pq.write_table(pa.table({c: [r[c] for r in part] for c in rows[0]}),
                       folder / f"split={split}" / "part-0.parquet")
    (folder / "_SUCCESS").write_text("")
    m = read_manifest(folder)
    assert m.columns[-1] == "split" and len(m) == 12
    assert [r["split"] for r in m.rows] == ["test"] * 3 + ["train"] * 9  # path order
    assert m.resolve(m.rows[0]["image"]).is_file()
    before = manifest_digest(folder)
    pq.write_table(pa.table({c: [r[c] for r in rows[:9]] for c in rows[0]}),
                   folder / "split=train" / "part-0.parquet", compression="gzip")
    assert manifest_digest(folder) != before


def test_a_null_label_is_left_out_like_an_empty_one(tmp_path):
    from mmcli.config import PreprocessConfig
    from mmcli.stages import preprocess

    manifest = make_dataset(tmp_path, n=12)
    labels = pa.array([None if k == 4 else ["red", "green", "blue"][k % 3] for k in range(12)])
    parquet = to_parquet(manifest, tmp_path / "m.parquet", label=labels)
    summary = preprocess(parquet, tmp_path / "pre", PreprocessConfig(jobs=1))
    assert (summary["kept"], summary["failed"]) == (11, 1)
    failures = (tmp_path / "pre" / "failures.csv").read_text()
    assert "item0004" in failures and "no label" in failures
    meta = json.loads((tmp_path / "pre" / "meta.json").read_text())
    assert str(parquet) in meta["inputs"]


def test_without_pyarrow_the_error_says_what_to_install(tmp_path, monkeypatch):
    manifest = make_dataset(tmp_path, n=4)
    parquet = to_parquet(manifest, tmp_path / "m.parquet")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(UsageError, match=r"needs pyarrow.*mmcli\[parquet\]"):
        read_manifest(parquet)


def test_predict_writes_parquet_beside_the_csv(pipeline, tmp_path):
    from tests.cli.helpers import fails, ok

    new = make_dataset(tmp_path / "data", n=5, with_label=False, name="new")
    parquet = to_parquet(new, tmp_path / "data" / "new.parquet")
    out = tmp_path / "pred"
    result = ok("predict", pipeline.model, parquet, "-o", out, "--format", "parquet", "-j", "1")
    assert "predictions.csv and predictions.parquet" in result.stderr
    with open(out / "predictions.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    table = pq.read_table(out / "predictions.parquet")
    assert table.column_names == list(rows[0])
    assert table.column("id").to_pylist() == [r["id"] for r in rows]
    prob = [c for c in table.column_names if c.startswith("prob_")][0]
    assert table.schema.field(prob).type == pa.float64()
    assert [f"{v:.6f}" for v in table.column(prob).to_pylist()] == [r[prob] for r in rows]
    meta = json.loads((out / "meta.json").read_text())
    assert meta["config"]["format"] == "parquet" and "predictions.parquet" in meta["outputs"]
    assert "is not one of csv, parquet" in fails(2, "predict", pipeline.model, parquet, "-o",
                                                  tmp_path / "p2", "--format", "xlsx")


def test_media_bytes_decode_like_their_files(tmp_path):
    from mmcli.config import PreprocessConfig
    from mmcli.stages import preprocess

    manifest = make_dataset(tmp_path, n=12)
    with open(manifest, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    blobs = {c: [(tmp_path / r[c]).read_bytes() for r in rows] for c in ("image", "audio")}
    # a truncated PNG: with `missing: drop` for the column, the row is left out, named as a cell
    blobs["image"][3] = blobs["image"][3][:40]
    parquet = to_parquet(manifest, tmp_path / "m.parquet", **blobs)
    m = read_manifest(parquet)
    assert m.types["image"] == "binary" and isinstance(m.rows[0]["image"], bytes)
    assert column_kinds(m, "label", {})["audio"] == "audio"
    summary = preprocess(parquet, tmp_path / "pq",
                         PreprocessConfig(jobs=1, missing={"image": "drop"}))
    assert (summary["kept"], summary["failed"]) == (11, 1)
    reason = (tmp_path / "pq" / "failures.csv").read_text().splitlines()[1]
    assert "item0003" in reason and "the 40-byte cell" in reason and "mmcli-" not in reason
    preprocess(manifest, tmp_path / "csv", PreprocessConfig(jobs=1))
    by_file = [json.loads(x) for x in (tmp_path / "csv" / "items.jsonl").read_text().split("\n")
               if x]
    by_bytes = [json.loads(x) for x in (tmp_path / "pq" / "items.jsonl").read_text().split("\n")
                if x]
    assert [it["hashes"] for it in by_bytes] == [it["hashes"] for it in by_file
                                                 if it["id"] != "item0003"]
    import numpy as np

    keep = [k for k, it in enumerate(by_file) if it["id"] != "item0003"]
    assert np.array_equal(np.load(tmp_path / "pq" / "data" / "image.npy"),
                          np.load(tmp_path / "csv" / "data" / "image.npy")[keep])
    assert np.array_equal(np.load(tmp_path / "pq" / "data" / "audio.npy")[:1000],
                          np.load(tmp_path / "csv" / "data" / "audio.npy")[:1000])


def test_show_and_run_follow_a_parquet_folder(tmp_path):
    from mmcli.config import PreprocessConfig
    from mmcli.stages import preprocess
    from mmcli.stages.show import describe

    manifest = make_dataset(tmp_path, n=9)
    folder = tmp_path / "ds"
    folder.mkdir()
    to_parquet(manifest, folder / "part-0.parquet")
    preprocess(folder, tmp_path / "pre", PreprocessConfig(jobs=1))
    info = describe(tmp_path / "pre")
    assert info["up_to_date"], info["reason"]
    assert [n["kind"] for n in info["lineage"]] == ["manifest", "media"]
    assert info["lineage"][0]["changed"] is False
    (folder / "part-1.parquet").write_bytes((folder / "part-0.parquet").read_bytes())
    info = describe(tmp_path / "pre")
    assert (info["up_to_date"], info["reason"]) == (False, "inputs changed")
    assert info["lineage"][0]["changed"] is True
