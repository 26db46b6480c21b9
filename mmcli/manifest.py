"""Manifests: CSV or JSONL, one row per sample; column kinds; deterministic splits.

Columns ``id``, the label column and ``split`` are reserved; every other column is one
modality whose kind (image, audio, text, numeric, categorical) is detected from its values or
set in the config. Media paths are resolved against the manifest's folder.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from mmcli.config import KINDS
from mmcli.errors import DataError, UsageError

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".opus"}
#: markers of a missing value in a numeric column (preprocess reads them as NaN)
MISSING_NUMBERS = ("nan", "na", "null", "none")
SPLITS = ("train", "val", "test")
SPLIT_ALIASES = {"train": "train", "val": "val", "valid": "val", "validation": "val",
                 "dev": "val", "test": "test"}


@dataclass
class Manifest:
    path: Path
    columns: list[str]
    rows: list[dict[str, str]]

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def __len__(self) -> int:
        return len(self.rows)

    def ids(self) -> list[str]:
        """Row ids: the ``id`` column when present, else the 1-based row number."""
        if "id" not in self.columns:
            return [str(i + 1) for i in range(len(self.rows))]
        seen: dict[str, int] = {}
        ids = []
        for i, row in enumerate(self.rows, start=1):
            value = row.get("id", "").strip()
            if not value:
                raise DataError(f"{self.path}: row {i} has an empty id", "give every row an id")
            if value in seen:
                raise DataError(
                    f"{self.path}: duplicate id {value!r} in rows {seen[value]} and {i}",
                    "ids must be unique; remove or rename the duplicate row",
                )
            seen[value] = i
            ids.append(value)
        return ids

    def resolve(self, value: str) -> Path:
        p = Path(value)
        return p if p.is_absolute() else self.base_dir / p


def read_manifest(path: Path) -> Manifest:
    """Read a CSV (``.csv``/``.tsv``) or JSONL (``.jsonl``/``.json``) manifest."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"manifest {path} is a directory", "pass the CSV or JSONL file in it")
    if not path.is_file():
        raise DataError(f"manifest {path} does not exist", "check the path")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        columns, rows = _read_jsonl(path)
    else:
        columns, rows = _read_csv(path, "\t" if suffix == ".tsv" else ",")
    if not rows:
        raise DataError(f"manifest {path} has no rows", "add at least one row below the header")
    return Manifest(path, columns, rows)


def _read_csv(path: Path, delimiter: str) -> tuple[list[str], list[dict[str, str]]]:
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f, delimiter=delimiter)
            header = next(reader, None)
            if not header or not any(h.strip() for h in header):
                raise DataError(f"manifest {path} is empty", "write a header row and data rows")
            header = [h.strip() for h in header]
            dupes = [h for h, n in Counter(header).items() if n > 1]
            if dupes:
                raise DataError(f"manifest {path}: column {dupes[0]!r} appears twice",
                                "rename one of them")
            rows = []
            for values in reader:
                if not values or all(not v.strip() for v in values):
                    continue  # blank line
                if len(values) != len(header):
                    raise DataError(
                        f"manifest {path}: line {reader.line_num} has {len(values)} fields, "
                        f"the header has {len(header)}",
                        "quote values that contain the delimiter",
                    )
                rows.append(dict(zip(header, values)))
    except UnicodeDecodeError as exc:
        raise DataError(f"manifest {path} is not UTF-8 text (byte {exc.start})",
                        "save it as UTF-8") from None
    except csv.Error as exc:
        raise DataError(f"manifest {path} is not valid CSV: {exc}", "fix the quoting") from None
    return header, rows


def _read_jsonl(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    columns: dict[str, None] = {}
    rows = []
    try:
        with open(path, encoding="utf-8-sig") as f:
            for n, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"manifest {path}: line {n} is not valid JSON ({exc.msg})",
                                    "write one JSON object per line") from None
                if not isinstance(obj, dict):
                    raise DataError(f"manifest {path}: line {n} is not a JSON object",
                                    "write one JSON object per line")
                for key in obj:
                    columns.setdefault(str(key), None)
                rows.append({str(k): _to_str(v) for k, v in obj.items()})
    except UnicodeDecodeError as exc:
        raise DataError(f"manifest {path} is not UTF-8 text (byte {exc.start})",
                        "save it as UTF-8") from None
    cols = list(columns)
    return cols, [{c: r.get(c, "") for c in cols} for r in rows]


def _to_str(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def detect_kind(values: list[str]) -> str:
    """Guess a column's kind from its non-empty values."""
    present = [v.strip() for v in values if v.strip()]
    if not present:
        return "text"
    n = len(present)
    suffixes = [Path(v).suffix.lower() for v in present]
    if sum(s in IMAGE_EXTENSIONS for s in suffixes) >= 0.9 * n:
        return "image"
    if sum(s in AUDIO_EXTENSIONS for s in suffixes) >= 0.9 * n:
        return "audio"
    numbers = [v for v in present if v.lower() not in MISSING_NUMBERS]
    if numbers and all(_is_float(v) for v in numbers):
        return "numeric"
    distinct = len(set(present))
    if distinct <= max(2, min(50, n // 2)) and max(len(v.split()) for v in present) <= 3:
        return "categorical"
    return "text"


def _is_float(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def column_kinds(manifest: Manifest, label: str | None, overrides: dict) -> dict[str, str]:
    """Kind of every modality column, in manifest order; ``ignore`` drops a column."""
    reserved = {"id", "split"} | ({label} if label else set())
    for col, kind in overrides.items():
        if col not in manifest.columns:
            raise UsageError(
                f"config 'preprocess.columns' names column {col!r}, "
                f"which is not in {manifest.path}",
                f"columns are: {', '.join(manifest.columns)}",
            )
        if kind not in (*KINDS, "ignore"):
            raise UsageError(f"config 'preprocess.columns.{col}' is {kind!r}",
                             f"use one of: {', '.join((*KINDS, 'ignore'))}")
    kinds = {}
    for col in manifest.columns:
        if col in reserved:
            continue
        kind = overrides.get(col) or detect_kind([r.get(col, "") for r in manifest.rows])
        if kind != "ignore":
            kinds[col] = kind
    if not kinds:
        raise DataError(f"manifest {manifest.path} has no modality columns",
                        "add columns besides id, label and split")
    return kinds


def assign_splits(manifest: Manifest, ids: list[str], labels: list[str], fractions: dict,
                  seed: int) -> list[str]:
    """Split per row: the ``split`` column when present, else a seeded hash split.

    Each item's split depends only on the seed, its id and its label: the item is placed by a
    uniform number derived from ``sha256(seed, label, id)``, compared with the cumulative
    fractions. Classes are split independently (stratified), and appending rows never moves an
    existing item to another split.
    """
    if "split" in manifest.columns:
        out = []
        for i, row in enumerate(manifest.rows, start=1):
            value = SPLIT_ALIASES.get(row.get("split", "").strip().lower())
            if value is None:
                raise DataError(
                    f"{manifest.path}: row {i} has split {row.get('split')!r}",
                    "use train, val or test, or drop the split column for an automatic split",
                )
            out.append(value)
        return out
    total = sum(float(fractions.get(s, 0)) for s in SPLITS)
    unknown = set(fractions) - set(SPLITS)
    if unknown or total <= 0 or any(float(fractions.get(s, 0)) < 0 for s in SPLITS):
        raise UsageError(f"config 'preprocess.split' is {fractions!r}",
                         "give non-negative train, val and test fractions")
    bounds, acc = [], 0.0
    for s in SPLITS:
        acc += float(fractions.get(s, 0)) / total
        bounds.append(acc)
    out = []
    for item_id, label in zip(ids, labels):
        digest = hashlib.sha256(f"{seed}\0{label}\0{item_id}".encode()).digest()
        u = int.from_bytes(digest[:8], "big") / 2**64
        out.append(next((s for s, b in zip(SPLITS, bounds) if u < b), "train"))
    return out
