"""Manifests: CSV/JSONL reading, ids, column kinds and deterministic splits."""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter

import pytest

from mmcli.errors import DataError, UsageError
from mmcli.manifest import (
    SPLIT_KEYS,
    Manifest,
    assign_splits,
    column_kinds,
    detect_kind,
    read_manifest,
    row_groups,
)

FRACTIONS = {"train": 0.7, "val": 0.15, "test": 0.15}


def write(path, text: str, encoding: str = "utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


# --- CSV ----------------------------------------------------------------------------------


def test_csv_basic(tmp_path):
    m = read_manifest(write(tmp_path / "m.csv", "id,text,label\na,hello,x\nb,world,y\n"))
    assert m.columns == ["id", "text", "label"]
    assert m.rows == [{"id": "a", "text": "hello", "label": "x"},
                      {"id": "b", "text": "world", "label": "y"}]
    assert len(m) == 2
    assert m.base_dir == tmp_path


def test_csv_bom_is_stripped(tmp_path):
    path = tmp_path / "m.csv"
    path.write_bytes(b"\xef\xbb\xbfid,label\na,x\n")
    m = read_manifest(path)
    assert m.columns == ["id", "label"]
    assert m.ids() == ["a"]


def test_csv_blank_lines_skipped(tmp_path):
    m = read_manifest(write(tmp_path / "m.csv", "id,label\n\na,x\n , \n\nb,y\n\n"))
    assert [r["id"] for r in m.rows] == ["a", "b"]


def test_csv_quoted_commas(tmp_path):
    m = read_manifest(write(tmp_path / "m.csv", 'id,text\na,"one, two, three"\n'))
    assert m.rows[0]["text"] == "one, two, three"


def test_tsv(tmp_path):
    m = read_manifest(write(tmp_path / "m.tsv", "id\ttext\na\tone, two\n"))
    assert m.rows == [{"id": "a", "text": "one, two"}]


def test_csv_wrong_field_count_names_line(tmp_path):
    path = write(tmp_path / "m.csv", "id,text,label\na,hi,x\nb,one, two,y\n")
    with pytest.raises(DataError) as exc:
        read_manifest(path)
    assert "line 3" in str(exc.value)
    assert "4 fields" in str(exc.value)


def test_csv_not_utf8(tmp_path):
    path = tmp_path / "m.csv"
    path.write_bytes("id,text\na,caf\u00e9\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        read_manifest(path)


@pytest.mark.parametrize("text", ["", "\n", "id,label\n", "id,label\n\n\n"])
def test_csv_empty_or_header_only(tmp_path, text):
    with pytest.raises(DataError):
        read_manifest(write(tmp_path / "m.csv", text))


def test_csv_duplicate_column(tmp_path):
    with pytest.raises(DataError, match="'text' appears twice"):
        read_manifest(write(tmp_path / "m.csv", "id,text,text\na,b,c\n"))


def test_missing_manifest(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_manifest(tmp_path / "nope.csv")


# --- JSONL --------------------------------------------------------------------------------


def test_jsonl_basic(tmp_path):
    lines = [{"id": "a", "x": 1.5, "flag": True, "label": "p"},
             {"id": "b", "x": None, "extra": "e", "label": "q"}]
    path = write(tmp_path / "m.jsonl",
                 "\ufeff" + "\n".join(json.dumps(o) for o in lines) + "\n\n")
    m = read_manifest(path)
    assert m.columns == ["id", "x", "flag", "label", "extra"]
    assert m.rows[0] == {"id": "a", "x": "1.5", "flag": "true", "label": "p", "extra": ""}
    assert m.rows[1] == {"id": "b", "x": "", "flag": "", "label": "q", "extra": "e"}


def test_jsonl_bad_line(tmp_path):
    path = write(tmp_path / "m.jsonl", '{"id": "a"}\n\n{"id": \n')
    with pytest.raises(DataError, match="line 3 is not valid JSON"):
        read_manifest(path)


def test_jsonl_not_object(tmp_path):
    with pytest.raises(DataError, match="line 1 is not a JSON object"):
        read_manifest(write(tmp_path / "m.jsonl", "[1, 2]\n"))


def test_jsonl_not_utf8(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_bytes('{"id": "caf\u00e9"}\n'.encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        read_manifest(path)


def test_jsonl_empty(tmp_path):
    with pytest.raises(DataError, match="no rows"):
        read_manifest(write(tmp_path / "m.jsonl", "\n\n"))


# --- ids ----------------------------------------------------------------------------------


def test_ids_from_column(tmp_path):
    m = read_manifest(write(tmp_path / "m.csv", "id,label\n a ,x\nb,y\n"))
    assert m.ids() == ["a", "b"]


def test_ids_are_row_numbers_without_id_column(tmp_path):
    m = read_manifest(write(tmp_path / "m.csv", "text,label\nu,x\nv,y\nw,z\n"))
    assert m.ids() == ["1", "2", "3"]


def test_duplicate_ids_name_both_rows(tmp_path):
    m = read_manifest(write(tmp_path / "m.csv", "id,label\na,x\nb,y\nc,z\nb,w\n"))
    with pytest.raises(DataError) as exc:
        m.ids()
    msg = str(exc.value)
    assert "'b'" in msg and "rows 2 and 4" in msg


def test_empty_id(tmp_path):
    m = read_manifest(write(tmp_path / "m.csv", "id,label\na,x\n  ,y\n"))
    with pytest.raises(DataError, match="row 2 has an empty id"):
        m.ids()


def test_resolve(tmp_path):
    m = read_manifest(write(tmp_path / "m.csv", "id,label\na,x\n"))
    assert m.resolve("media/a.png") == tmp_path / "media" / "a.png"
    assert m.resolve(str(tmp_path / "abs.png")) == tmp_path / "abs.png"


# --- kinds --------------------------------------------------------------------------------


@pytest.mark.parametrize("values, kind", [
    (["a.png", "b.JPG", "c.webp"], "image"),
    (["a.wav", "b.flac", "c.mp3"], "audio"),
    (["1", "2.5", "-3e4", ""], "numeric"),
    (["cat", "dog", "cat", "dog", "cat", "dog"], "categorical"),
    (["the quick brown fox jumps", "over the lazy dog today", "hello there my friend"],
     "text"),
    (["", "  "], "text"),
])
def test_detect_kind(values, kind):
    assert detect_kind(values) == kind


@pytest.mark.parametrize("marker", ["NA", "nan", "NaN", "null", "None"])
def test_detect_kind_numeric_with_missing_markers(marker):
    """The markers that preprocess reads as a missing number keep a column numeric."""
    values = ["1.5", marker, "2.0", "3.25", "4", "5.5", "6.1", "7.2", "8.9", "10.5"]
    assert detect_kind(values) == "numeric"


def test_detect_kind_only_missing_markers_is_not_numeric():
    assert detect_kind(["NA", "NA", "null", "NA"]) == "categorical"


def test_detect_kind_many_distinct_short_values_is_text():
    assert detect_kind([f"word{k}" for k in range(20)]) == "text"


def manifest_for_kinds(tmp_path) -> Manifest:
    rows = "".join(f"i{k},p{k}.png,{k}.5,{'ab'[k % 2]},some words number {k} here,"
                   f"{'xy'[k % 2]},train\n" for k in range(10))
    return read_manifest(write(tmp_path / "m.csv", "id,photo,num,cat,text,label,split\n" + rows))


def test_column_kinds_detected(tmp_path):
    m = manifest_for_kinds(tmp_path)
    assert column_kinds(m, "label", {}) == {"photo": "image", "num": "numeric",
                                            "cat": "categorical", "text": "text"}


def test_column_kinds_overrides_and_ignore(tmp_path):
    m = manifest_for_kinds(tmp_path)
    kinds = column_kinds(m, "label", {"num": "categorical", "text": "ignore"})
    assert kinds == {"photo": "image", "num": "categorical", "cat": "categorical"}
    assert list(kinds) == ["photo", "num", "cat"]


def test_column_kinds_unknown_column(tmp_path):
    m = manifest_for_kinds(tmp_path)
    with pytest.raises(UsageError, match="'nope'"):
        column_kinds(m, "label", {"nope": "text"})


def test_column_kinds_bad_kind(tmp_path):
    m = manifest_for_kinds(tmp_path)
    with pytest.raises(UsageError, match="'hologram'") as err:
        column_kinds(m, "label", {"text": "hologram"})
    assert "video" in err.value.hint  # the registered kinds are listed


def test_column_kinds_none_left(tmp_path):
    m = read_manifest(write(tmp_path / "m.csv", "id,label,split\na,x,train\n"))
    with pytest.raises(DataError, match="no modality columns"):
        column_kinds(m, "label", {})


# --- splits -------------------------------------------------------------------------------


def test_split_column_with_aliases(tmp_path):
    m = read_manifest(write(tmp_path / "m.csv",
                            "id,split\na,train\nb,Valid\nc,validation\nd, dev \ne,TEST\nf,val\n"))
    assert assign_splits(m, m.ids(), [""] * 6, FRACTIONS, 0) == \
        ["train", "val", "val", "val", "test", "val"]


def test_split_column_bad_value_names_row(tmp_path):
    m = read_manifest(write(tmp_path / "m.csv", "id,split\na,train\nb,holdout\n"))
    with pytest.raises(DataError) as exc:
        assign_splits(m, m.ids(), ["", ""], FRACTIONS, 0)
    assert "row 2" in str(exc.value) and "'holdout'" in str(exc.value)


def hash_manifest(tmp_path, n: int) -> Manifest:
    return Manifest(tmp_path / "m.csv", ["id", "label"],
                    [{"id": f"id{k}", "label": "ab"[k % 2]} for k in range(n)])


def hash_splits(tmp_path, n: int, seed: int = 0, fractions=FRACTIONS) -> list[str]:
    m = hash_manifest(tmp_path, n)
    return assign_splits(m, m.ids(), [r["label"] for r in m.rows], fractions, seed)


def test_hash_split_deterministic(tmp_path):
    assert hash_splits(tmp_path, 200, seed=3) == hash_splits(tmp_path, 200, seed=3)


def test_hash_split_fractions(tmp_path):
    counts = Counter(hash_splits(tmp_path, 3000))
    assert set(counts) == {"train", "val", "test"}
    assert abs(counts["train"] / 3000 - 0.7) < 0.04
    assert abs(counts["val"] / 3000 - 0.15) < 0.03
    assert abs(counts["test"] / 3000 - 0.15) < 0.03


def test_hash_split_fractions_are_normalised(tmp_path):
    counts = Counter(hash_splits(tmp_path, 2000, fractions={"train": 1, "test": 1}))
    assert set(counts) == {"train", "test"}
    assert abs(counts["train"] / 2000 - 0.5) < 0.05


def test_hash_split_other_seed_differs(tmp_path):
    a, b = hash_splits(tmp_path, 300, seed=0), hash_splits(tmp_path, 300, seed=1)
    assert a != b
    assert sum(x != y for x, y in zip(a, b)) > 30


def test_hash_split_stable_when_rows_appended(tmp_path):
    first = hash_splits(tmp_path, 100, seed=7)
    more = hash_splits(tmp_path, 150, seed=7)
    assert more[:100] == first


def test_hash_split_stable_when_rows_reordered(tmp_path):
    m = hash_manifest(tmp_path, 50)
    ids, labels = m.ids(), [r["label"] for r in m.rows]
    fwd = assign_splits(m, ids, labels, FRACTIONS, 0)
    rev = assign_splits(m, ids[::-1], labels[::-1], FRACTIONS, 0)
    assert rev[::-1] == fwd


@pytest.mark.parametrize("fractions", [{"train": 0.7, "holdout": 0.3}, {"train": 0, "val": 0},
                                       {"train": 1.2, "test": -0.2}])
def test_hash_split_bad_fractions(tmp_path, fractions):
    with pytest.raises(UsageError):
        hash_splits(tmp_path, 10, fractions=fractions)


def reference_split(seed: int, label: str, item_id: str) -> str:
    """The label_id split as mmcli has always computed it (70/15/15)."""
    digest = hashlib.sha256(f"{seed}\0{label}\0{item_id}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    return "train" if u < 0.7 else "val" if u < 0.85 else "test"


def test_label_id_key_is_the_original_split(tmp_path):
    m = hash_manifest(tmp_path, 300)
    labels = [r["label"] for r in m.rows]
    expected = [reference_split(4, lab, i) for i, lab in zip(m.ids(), labels)]
    assert assign_splits(m, m.ids(), labels, FRACTIONS, 4) == expected
    assert assign_splits(m, m.ids(), labels, FRACTIONS, 4, key="label_id") == expected


def test_id_key_ignores_the_label(tmp_path):
    m = hash_manifest(tmp_path, 300)
    labels = [r["label"] for r in m.rows]
    before = assign_splits(m, m.ids(), labels, FRACTIONS, 0, key="id")
    corrected = ["c" if k % 3 == 0 else lab for k, lab in enumerate(labels)]
    assert assign_splits(m, m.ids(), corrected, FRACTIONS, 0, key="id") == before
    # the label_id key moves some of the corrected items
    assert assign_splits(m, m.ids(), corrected, FRACTIONS, 0) != \
        assign_splits(m, m.ids(), labels, FRACTIONS, 0)
    counts = Counter(before)
    assert abs(counts["train"] / 300 - 0.7) < 0.1


def test_unknown_split_key(tmp_path):
    m = hash_manifest(tmp_path, 4)
    with pytest.raises(UsageError) as exc:
        assign_splits(m, m.ids(), ["a"] * 4, FRACTIONS, 0, key="label")
    assert "split_key" in str(exc.value) and "label_id, id" in str(exc.value)


def group_manifest(tmp_path, n: int, n_groups: int, seed: int = 0) -> Manifest:
    rng = random.Random(seed)
    return Manifest(tmp_path / "m.csv", ["id", "speaker", "label"],
                    [{"id": f"id{k}", "speaker": f"spk{rng.randrange(n_groups)}",
                      "label": "abc"[k % 3]} for k in range(n)])


def group_splits(m: Manifest, seed: int = 0, key: str = "label_id") -> list[str]:
    ids = m.ids()
    return assign_splits(m, ids, [r["label"] for r in m.rows], FRACTIONS, seed, key,
                         row_groups(m, "speaker", ids))


@pytest.mark.parametrize("key", SPLIT_KEYS)
def test_no_group_in_two_splits(tmp_path, key):
    m = group_manifest(tmp_path, 2000, 150)
    splits = group_splits(m, key=key)
    by_group: dict[str, set] = {}
    for row, split in zip(m.rows, splits):
        by_group.setdefault(row["speaker"], set()).add(split)
    assert all(len(s) == 1 for s in by_group.values())
    # fractions hold in expectation over groups
    per_group = Counter(next(iter(s)) for s in by_group.values())
    assert set(per_group) == {"train", "val", "test"}
    assert abs(per_group["train"] / len(by_group) - 0.7) < 0.12


def test_group_splits_stable_when_rows_appended(tmp_path):
    m = group_manifest(tmp_path, 300, 40)
    before = group_splits(m)
    # new rows of existing groups, and rows of new groups, at the end
    more = Manifest(m.path, m.columns, m.rows + [
        {"id": f"new{k}", "speaker": f"spk{k % 60}", "label": "abc"[k % 3]} for k in range(200)])
    after = group_splits(more)
    assert after[:300] == before
    split_of = {r["speaker"]: s for r, s in zip(m.rows, before)}
    assert all(split_of.get(r["speaker"], s) == s for r, s in zip(more.rows, after))


def test_empty_group_cell_is_its_own_group(tmp_path):
    rows = [{"id": f"id{k}", "speaker": "" if k % 2 else " solo ", "label": "a"}
            for k in range(400)]
    m = Manifest(tmp_path / "m.csv", ["id", "speaker", "label"], rows)
    groups = row_groups(m, "speaker", m.ids())
    assert groups[0] == "solo" and groups[1] == "id:id1" and groups[3] == "id:id3"
    splits = group_splits(m)
    assert len({s for s, r in zip(splits, rows) if r["speaker"].strip()}) == 1
    # the ungrouped rows are spread like single items, each by its id
    assert set(s for s, r in zip(splits, rows) if not r["speaker"]) == {"train", "val", "test"}


def test_unknown_group_column_names_the_columns(tmp_path):
    m = group_manifest(tmp_path, 3, 2)
    with pytest.raises(DataError) as exc:
        row_groups(m, "spkr", m.ids())
    assert "group column 'spkr'" in str(exc.value) and "id, speaker, label" in str(exc.value)


def test_split_column_wins_over_groups(tmp_path):
    m = read_manifest(write(tmp_path / "m.csv", "id,speaker,split\na,s1,train\nb,s1,test\n"))
    assert assign_splits(m, m.ids(), ["", ""], FRACTIONS, 0, "id",
                         row_groups(m, "speaker", m.ids())) == ["train", "test"]


# --- delimiters, hostile headers, line numbers ------------------------------------------------


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiter_is_detected_from_the_header(tmp_path, delimiter):
    d = delimiter
    m = read_manifest(write(tmp_path / "m.csv",
                            f'id{d}text{d}label\na{d}"x{d} y, z; w"{d}p\nb{d}plain{d}q\n'))
    assert m.columns == ["id", "text", "label"]
    assert m.rows[0]["text"] == f"x{d} y, z; w"


@pytest.mark.parametrize("header, expected", [
    ("id,text,label", ","), ("id;text;label", ";"), ("id|a,b|c", "|"), ("a,b;c", ","),
    ('"x;y;z",b,c', ","), ("single", ","), ("", ","),
])
def test_sniff_delimiter(header, expected):
    from mmcli.manifest import sniff_delimiter

    assert sniff_delimiter(header + "\n1;2;3|4\n") == expected


def test_tsv_is_always_tab(tmp_path):
    m = read_manifest(write(tmp_path / "m.tsv", "id\ttext;with;semicolons\na\tb\n"))
    assert m.columns == ["id", "text;with;semicolons"]


def test_quoted_newlines_and_crlf(tmp_path):
    m = read_manifest(write(tmp_path / "m.csv",
                            'id,text,label\r\na,"one\r\ntwo\nthree",x\r\nb,plain,y\r\n'))
    assert m.rows[0]["text"] == "one\r\ntwo\nthree"
    assert m.rows[1] == {"id": "b", "text": "plain", "label": "y"}


def test_field_count_error_names_the_lines_of_a_multiline_row(tmp_path):
    path = write(tmp_path / "m.csv", 'id,text,label\na,b,c\nb,"open\nquote,c\nd,e,f\n')
    with pytest.raises(DataError, match=r"the row on lines 3-5 has 2 fields.*close every quote"):
        read_manifest(path)


def test_megabyte_cell_is_read(tmp_path):
    big = "word " * 400_000
    m = read_manifest(write(tmp_path / "m.csv", f'id,text\na,"{big}"\n'))
    assert m.rows[0]["text"] == big


def test_non_utf8_names_the_line(tmp_path):
    path = tmp_path / "m.csv"
    path.write_bytes(b"\xef\xbb\xbfid,text\na,fine\nb,caf\xe9\n")
    with pytest.raises(DataError, match="line 3 has the byte 0xe9"):
        read_manifest(path)


def test_unnamed_header_column(tmp_path):
    with pytest.raises(DataError, match="column 1 of the header has no name"):
        read_manifest(write(tmp_path / "m.csv", ",id,label\n0,a,x\n"))


def test_manifest_that_is_not_a_regular_file(tmp_path):
    import os

    os.mkfifo(tmp_path / "m.csv")
    with pytest.raises(DataError, match="not a regular file"):
        read_manifest(tmp_path / "m.csv")


@pytest.mark.parametrize("line, reason", [
    ("[" * 50_000, "nested too deeply"), ('{"id": ' + "1" * 5000 + "}", "Exceeds the limit"),
    ('{"id": NaN, "x": [1, {"a": 2}]}', None),
])
def test_jsonl_hostile_lines(tmp_path, line, reason):
    path = write(tmp_path / "m.jsonl", line + "\n")
    if reason is None:
        assert read_manifest(path).rows == [{"id": "nan", "x": '[1, {"a": 2}]'}]
        return
    with pytest.raises(DataError, match=f"line 1 is not valid JSON .*{reason}"):
        read_manifest(path)


@pytest.mark.parametrize("name", ["../evil", "a/b", "a\\b", "..", ".", "tab\there", "x" * 101])
def test_modality_column_names_that_would_be_paths_are_refused(tmp_path, name):
    m = Manifest(tmp_path / "m.csv", ["id", name, "ok", "label"],
                 [{"id": "a", name: "some text", "ok": "more text", "label": "x"}])
    with pytest.raises(DataError, match="cannot be used"):
        column_kinds(m, "label", {})
    assert list(column_kinds(m, "label", {name: "ignore"})) == ["ok"]  # ignored: never a file


def test_unicode_column_names_are_fine(tmp_path):
    m = Manifest(tmp_path / "m.csv", ["id", "légende photo", "label"],
                 [{"id": "a", "légende photo": "un chat", "label": "x"}])
    assert list(column_kinds(m, "label", {})) == ["légende photo"]


# --- property-based --------------------------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

FIXTURE_OK = [HealthCheck.function_scoped_fixture]
MANIFEST_BYTES = st.one_of(
    st.binary(max_size=400),
    st.text(alphabet=st.sampled_from('ab,;|\t"\n\r \ufeff\x00{}[]:é'), max_size=200).map(
        lambda t: t.encode("utf-8")),
)


@settings(max_examples=150, deadline=None, suppress_health_check=FIXTURE_OK)
@given(data=MANIFEST_BYTES, suffix=st.sampled_from([".csv", ".tsv", ".jsonl", ".txt"]))
def test_reading_arbitrary_bytes_raises_only_data_error(tmp_path, data, suffix):
    path = tmp_path / f"m{suffix}"
    path.write_bytes(data)
    try:
        m = read_manifest(path)
    except DataError as exc:
        assert "\n" not in exc.message.replace("\\n", "")
        return
    assert m.rows and all(set(r) == set(m.columns) for r in m.rows)
    try:
        m.ids()
    except DataError:
        pass


CELL = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
               max_size=20)


@settings(max_examples=100, deadline=None, suppress_health_check=FIXTURE_OK)
@given(rows=st.lists(st.lists(CELL, min_size=3, max_size=3), min_size=1, max_size=6),
       delimiter=st.sampled_from([",", ";", "\t", "|"]))
def test_csv_round_trip(tmp_path, rows, delimiter):
    """Rows written by the csv module (quotes, newlines, delimiters, any unicode) come back."""
    import csv

    rows = [r for r in rows if any(v.strip() for v in r)]  # blank rows are skipped by design
    header = ["id", "text", "label"]
    path = tmp_path / "m.csv"
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter=delimiter, lineterminator="\r\n")
        writer.writerow(header)
        writer.writerows(rows)
    if not rows:
        with pytest.raises(DataError):
            read_manifest(path)
        return
    m = read_manifest(path)
    assert m.columns == header
    assert m.rows == [dict(zip(header, r)) for r in rows]


@settings(max_examples=60, deadline=None, suppress_health_check=FIXTURE_OK)
@given(rows=st.lists(st.dictionaries(st.sampled_from(["id", "text", "n"]),
                                     st.one_of(CELL, st.integers(), st.none()), min_size=1),
                     min_size=1, max_size=5))
def test_jsonl_round_trip(tmp_path, rows):
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    m = read_manifest(path)
    for got, want in zip(m.rows, rows):
        assert got == {c: ("" if want.get(c) is None else str(want.get(c))) for c in m.columns}
