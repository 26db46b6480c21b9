"""Manifests held by column: packed cells, blocks of rows, lines split like io.StringIO."""

from __future__ import annotations

import io
import json
import random

import pytest

import mmcli.manifest as manifest_module
from mmcli.manifest import Column, Manifest, _lines, read_manifest


def test_lines_split_like_stringio():
    rng = random.Random(0)
    texts = ["", "a", "a\n", "a\r\nb\rc\n\nd", "\r\r\n\n", "x\u2028y\x0bz\x1c\n"]
    texts += ["".join(rng.choice('ab\r\n\x0b\u2028,"') for _ in range(rng.randint(0, 12)))
              for _ in range(500)]
    for text in texts:
        assert list(_lines(text)) == list(io.StringIO(text, newline="")), repr(text)
    # over 1 MB: split in pieces (ending after a \n) by str.splitlines
    big = "".join(rng.choice(["ab,c\n", "x\r\n", "y\r", '"q\nq",\n']) for _ in range(300_000))
    assert list(_lines(big)) == list(io.StringIO(big, newline=""))


def test_a_column_packs_blocks_of_cells():
    column = Column()
    column.extend(["a", "", "ccc"])
    column.extend(("é", "ü n"))  # not ASCII: character offsets
    assert len(column) == 5 and list(column) == ["a", "", "ccc", "é", "ü n"]
    assert [column[i] for i in (4, 0, 2, 3)] == ["ü n", "a", "ccc", "é"]
    with pytest.raises(IndexError):
        column[5]
    binary = Column(binary=True)
    binary.extend([b"\x89PNG", "", b"RIFF"])  # "" is a null cell
    assert list(binary) == [b"\x89PNG", "", b"RIFF"] and binary[1] == ""


def test_rows_round_trip_and_stripped_values_are_shared(tmp_path):
    rows = [{"id": "a", "label": " x "}, {"id": "b", "label": "x"}, {"id": "c"}]
    m = Manifest(tmp_path / "m.csv", ["id", "label"], rows)
    assert m.rows == [{"id": "a", "label": " x "}, {"id": "b", "label": "x"},
                      {"id": "c", "label": ""}]
    assert len(m) == 3 and m.row(1) == {"id": "b", "label": "x"}
    labels = m.stripped("label")
    assert labels == ["x", "x", ""] and labels[0] is labels[1]
    assert list(m.cells("absent")) == ["", "", ""]


def test_csv_and_jsonl_read_across_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(manifest_module, "BLOCK_ROWS", 2)
    csv_path = tmp_path / "m.csv"
    csv_path.write_text('id,text\na,"one\ntwo"\nb,\n\nc,z\nd,é\ne,last\n', encoding="utf-8")
    m = read_manifest(csv_path)
    assert [r["id"] for r in m.rows] == list("abcde") and m.rows[0]["text"] == "one\ntwo"
    assert m.ids() == list("abcde") and m.rows[3]["text"] == "é"
    # a key first seen in a later block is empty in the rows before it
    objects = [{"id": "a"}, {"id": "b"}, {"id": "c", "late": 1}, {"late": None, "id": "d"}]
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text("".join(json.dumps(o) + "\n" for o in objects), encoding="utf-8")
    m = read_manifest(jsonl)
    assert m.columns == ["id", "late"]
    assert m.rows == [{"id": "a", "late": ""}, {"id": "b", "late": ""},
                      {"id": "c", "late": "1"}, {"id": "d", "late": ""}]


def test_parquet_cells_from_arrow_buffers(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table({
        "id": [f"r{k}" for k in range(9)],
        "text": ["plain", None, "naïve café", "", "x", None, "ü", "y", "z"],
        "cat": pa.array(["a", "b", None, "a", "b", "a", "b", "a", "b"]).dictionary_encode(),
        "big": pa.array([str(k) * k for k in range(9)], pa.large_string()),
        "n": pa.array([1.5, None, -2.0, 0.1, 3, 4, 5, 6, 7], pa.float64()),
    })
    path = tmp_path / "m.parquet"
    pq.write_table(table, path, row_group_size=4)  # blocks of 4, 4 and 1 rows
    m = read_manifest(path)
    want = [{k: ("" if v is None else v) for k, v in row.items()}
            for row in table.cast(pa.schema([(f.name, pa.string()) for f in table.schema]))
            .to_pylist()]
    assert m.rows == want
    assert m.rows[1]["n"] == "" and m.rows[2]["text"] == "naïve café"


def test_preprocess_never_builds_the_list_of_row_dicts(tmp_path, monkeypatch):
    """The stage reads columns; a dict per row is what took 1.5 GB for a million rows."""
    from mmcli.config import PreprocessConfig
    from mmcli.stages.preprocess import manifest_inputs, preprocess
    from mmcli.testing.dummies import make_dataset

    path = make_dataset(tmp_path / "data", n=12)
    monkeypatch.setattr(Manifest, "rows", property(lambda self: pytest.fail("rows built")))
    summary = preprocess(path, tmp_path / "pre", PreprocessConfig(jobs=1))
    assert summary["kept"] == 12
    m = read_manifest(path)
    assert manifest_inputs(m, {"image": "image", "audio": "audio"})["media"]


def test_a_jsonl_manifest_of_empty_objects_has_rows_and_no_column(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text("{}\n{}\n", encoding="utf-8")
    m = read_manifest(path)
    assert m.columns == [] and len(m) == 2 and m.rows == [{}, {}] and m.ids() == ["1", "2"]
