"""Manifests: CSV, JSONL or Parquet, one row per sample; column kinds; deterministic splits.

Columns ``id``, the label column and ``split`` are reserved (and a group column, extra task
label columns: see :mod:`mmcli.stages.preprocess`); every other column is one
modality whose kind (image, audio, text, numeric, categorical) is detected from its values or
set in the config. Media paths are resolved against the manifest's folder.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from mmcli import storage
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
    #: a local path, or a URL (str) for a manifest on an fsspec filesystem
    path: Path | str
    columns: list[str]
    rows: list[dict[str, str]]
    #: column -> type in the file's schema (Parquet: "double", "string", "binary"...; CSV and
    #: JSONL: none). The cells of a binary column are bytes (encoded media), not text.
    types: dict[str, str] = field(default_factory=dict)

    @property
    def base_dir(self) -> Path | str:
        return storage.parent(self.path) if storage.is_url(self.path) else self.path.parent

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

    def resolve(self, value: str) -> Path | str:
        """A media cell as a local path or a URL (relative cells: against the manifest's
        folder, a URL's folder for a manifest read from a URL)."""
        return storage.join(self.base_dir, value)


def read_manifest(path: Path | str) -> Manifest:
    """Read a CSV (``.csv``/``.tsv``/anything else) or JSONL (``.jsonl``/``.ndjson``/``.json``)
    manifest. Whatever the file holds, this returns a manifest or raises :class:`DataError`.

    CSV: UTF-8 (a byte-order mark is dropped); the delimiter is a tab for ``.tsv`` and
    otherwise whichever of ``,`` ``;`` tab ``|`` occurs most often in the header line (a comma
    on ties); fields may be quoted and hold delimiters and newlines; blank lines are skipped.

    ``path`` may be an fsspec URL (``s3://bucket/m.csv``); see :mod:`mmcli.storage`.
    """
    try:
        path = storage.local(str(path)) if isinstance(path, str) else path
    except OSError as exc:
        raise DataError(f"manifest {exc}", "use file:///absolute/path or a plain path") from None
    if storage.is_url(path):
        try:
            data = storage.read_bytes(path)
        except FileNotFoundError:
            raise DataError(f"manifest {path} does not exist", "check the URL") from None
        except OSError as exc:
            raise DataError(f"manifest {path} cannot be read: {exc}",
                            "check the URL, the filesystem's credentials and its fsspec "
                            "back-end") from None
        if storage.suffix(path).lower() in PARQUET_SUFFIXES:
            return _read_parquet(path, io.BytesIO(data))
        return _parse(path, data)
    if path.is_dir():
        if parquet_files(path):
            return _read_parquet(path)
        raise DataError(f"manifest {path} is a directory",
                        "pass the CSV or JSONL file in it, or a folder of .parquet files")
    if not path.exists():
        raise DataError(f"manifest {path} does not exist", "check the path")
    if not path.is_file():
        raise DataError(f"manifest {path} is not a regular file", "pass the CSV or JSONL file")
    if storage.suffix(path).lower() in PARQUET_SUFFIXES:
        return _read_parquet(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"manifest {path} cannot be read: {exc.strerror or exc}",
                        "check its permissions") from None
    return _parse(path, data)


def _parse(path: Path | str, data: bytes) -> Manifest:
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        text = data[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        at = bom + exc.start
        line = data.count(b"\n", 0, at) + 1
        raise DataError(
            f"manifest {path} is not UTF-8 text: line {line} has the byte 0x{data[at]:02x}",
            "save it as UTF-8, e.g. with `iconv -f latin1 -t utf-8 IN > OUT`") from None
    suffix = storage.suffix(path).lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        columns, rows = _read_jsonl(path, text)
    else:
        delimiter = "\t" if suffix == ".tsv" else sniff_delimiter(text)
        columns, rows = _read_csv(path, text, delimiter)
    if not rows:
        raise DataError(f"manifest {path} has no rows", "add at least one row below the header")
    return Manifest(path, columns, rows)


PARQUET_SUFFIXES = (".parquet", ".pq")
#: rows per batch read from a Parquet file (memory use is one batch of Arrow data at a time)
PARQUET_BATCH_ROWS = 65_536


def parquet_files(folder: Path) -> list[Path]:
    """The ``.parquet`` files of a data set folder, partition subfolders included, in path
    order; names starting with ``.`` or ``_`` (``_SUCCESS``, ``_metadata``) are no data."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in PARQUET_SUFFIXES
                  and p.is_file() and not any(part.startswith((".", "_"))
                                              for part in p.relative_to(folder).parts))


def manifest_digest(path: Path | str) -> str:
    """The sha256 of a manifest file; for a folder of Parquet files, of their relative paths
    and sha256s."""
    from mmcli.artifacts import sha256_file

    if storage.is_url(path):
        return storage.sha256(path)
    path = Path(path)
    if not path.is_dir():
        return sha256_file(path)
    h = hashlib.sha256()
    for f in parquet_files(path):
        h.update(f"{f.relative_to(path).as_posix()}\0{sha256_file(f)}\n".encode())
    return h.hexdigest()


def require_pyarrow():
    try:
        import pyarrow
        import pyarrow.compute
        import pyarrow.dataset
        import pyarrow.parquet
    except ImportError:
        raise UsageError("reading a Parquet manifest needs pyarrow",
                         "pip install 'mmcli[parquet]'") from None
    return pyarrow


#: leading bytes of encoded media -> (kind, file suffix); RIFF files are told apart at byte 8
_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image", ".png"), (b"\xff\xd8\xff", "image", ".jpg"),
          (b"GIF8", "image", ".gif"), (b"BM", "image", ".bmp"), (b"II*\x00", "image", ".tif"),
          (b"MM\x00*", "image", ".tif"), (b"fLaC", "audio", ".flac"),
          (b"OggS", "audio", ".ogg"), (b"ID3", "audio", ".mp3"))


def sniff_media(data: bytes) -> tuple[str, str] | None:
    """(kind, file suffix) of encoded image or audio bytes, from their leading bytes."""
    if data[:4] == b"RIFF":
        return {b"WAVE": ("audio", ".wav"), b"WEBP": ("image", ".webp")}.get(data[8:12])
    if data[:4] == b"FORM" and data[8:12] in (b"AIFF", b"AIFC"):
        return ("audio", ".aiff")
    return next(((kind, suffix) for magic, kind, suffix in _MAGIC if data.startswith(magic)),
                None)


def _bytes_kind(manifest: Manifest, col: str, override: str | None) -> str:
    """The kind of a binary column: image or audio (by the leading bytes of 90% of its cells,
    or set in the config), or ignore."""
    if override in ("image", "audio", "ignore"):
        return override
    if override is not None:
        raise DataError(f"manifest {manifest.path}: column {col!r} holds bytes, but "
                        f"preprocess.columns makes it {override}",
                        "a binary column can be image, audio or ignore")
    cells = [r[col] for r in manifest.rows if isinstance(r.get(col), bytes) and r[col]]
    sniffed = [sniff_media(c) for c in cells]
    for kind in ("image", "audio"):
        if cells and sum(x is not None and x[0] == kind for x in sniffed) >= 0.9 * len(cells):
            return kind
    raise DataError(f"manifest {manifest.path}: column {col!r} holds bytes that are not "
                    "encoded images or audio (PNG, JPEG, GIF, BMP, TIFF, WebP; WAV, FLAC, "
                    "Ogg, MP3, AIFF)", f"set it to ignore: preprocess: {{columns: {{{col}: "
                    "ignore}}}, or to image or audio if it is one")


def parquet_kind(type_name: str) -> str | None:
    """The kind a Parquet column's type implies: numbers are numeric and booleans categorical
    without looking at the values; None (strings, dates...): detected like a CSV column."""
    if type_name.startswith(("int", "uint", "float", "double", "halffloat", "decimal")):
        return "numeric"
    if type_name == "bool":
        return "categorical"
    return None


def _read_parquet(path: Path | str, source=None) -> Manifest:
    """A Parquet file, or a folder of them (a data set; ``key=value`` subfolders are hive
    partitions and become columns), read one batch of rows at a time. Cells become text like
    a CSV's (numbers in their shortest form, nulls empty); the schema's types are kept in
    :attr:`Manifest.types` so that number columns need no guessing."""
    pa = require_pyarrow()
    try:
        if source is None and Path(path).is_dir():
            files = [str(f) for f in parquet_files(Path(path))]
            dataset = pa.dataset.dataset(files, format="parquet", partitioning="hive",
                                         partition_base_dir=str(path))
            schema = dataset.schema
            batches = dataset.to_batches(batch_size=PARQUET_BATCH_ROWS, use_threads=False)
        else:  # one file: its row groups in order
            reader = pa.parquet.ParquetFile(source or str(path))
            schema = reader.schema_arrow
            batches = reader.iter_batches(batch_size=PARQUET_BATCH_ROWS)
    except (pa.ArrowException, OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"manifest {path} is not a readable Parquet file ({first})",
                        "write it again with pyarrow, pandas or Spark, or pass a CSV") from None
    columns = [f.name for f in schema]
    types = {}
    for f in schema:
        if f.name == "" or f.name.strip() != f.name:
            raise DataError(f"manifest {path}: column {columns.index(f.name) + 1} has the "
                            f"name {f.name!r}", "name every column, without outer spaces")
        if pa.types.is_nested(f.type):
            raise DataError(f"manifest {path}: column {f.name!r} is nested ({f.type}); mmcli "
                            "reads flat columns", "flatten it into plain columns, or drop it")
        types[f.name] = ("binary" if _is_binary(pa, f.type) else
                         str(f.type.value_type if pa.types.is_dictionary(f.type) else f.type))
    dupes = [c for c, n in Counter(columns).items() if n > 1]
    if dupes:
        raise DataError(f"manifest {path}: column {dupes[0]!r} appears twice",
                        "rename one of them")
    rows: list[dict[str, str]] = []
    try:
        for batch in batches:
            cells = [_as_text(pa, batch.column(i)) for i in range(batch.num_columns)]
            rows.extend(dict(zip(columns, values)) for values in zip(*cells))
    except (pa.ArrowException, OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"manifest {path} cannot be read as Parquet ({first})",
                        "write it again, or check the disk") from None
    if not rows:
        raise DataError(f"manifest {path} has no rows", "write at least one row")
    return Manifest(path, columns, rows, types)


def _is_binary(pa, arrow_type) -> bool:
    return (pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type)
            or pa.types.is_fixed_size_binary(arrow_type))


def _as_text(pa, array) -> list:
    """An Arrow column as CSV-like cells: numbers as their shortest text, nulls as ''; a
    binary column's cells stay bytes (encoded media, decoded like files)."""
    if _is_binary(pa, array.type):
        return [b if b is not None else "" for b in array.to_pylist()]
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if not pa.types.is_string(array.type):
        array = pa.compute.cast(array, pa.string())
    return pa.compute.fill_null(array, "").to_pylist()


DELIMITERS = (",", ";", "\t", "|")


def sniff_delimiter(text: str) -> str:
    """The delimiter of CSV ``text``: the one of ``DELIMITERS`` most frequent in its header
    line, outside quotes; a comma when none occurs or on ties."""
    header, quoted = [], False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        elif ch in "\r\n" and not quoted:
            break
        elif not quoted:
            header.append(ch)
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])  # max keeps the first of equal counts
    return best if counts[best] > 0 else ","


def _read_csv(path: Path, text: str, delimiter: str) -> tuple[list[str], list[dict[str, str]]]:
    # a text cell may be megabytes long (the per-item text limit applies later); the csv
    # module's limit is process-wide, so it is put back for the caller's own csv reading
    saved = csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
    try:
        return _parse_csv(path, text, delimiter)
    finally:
        csv.field_size_limit(saved)


def _parse_csv(path: Path, text: str, delimiter: str) -> tuple[list[str], list[dict[str, str]]]:
    shown = "tab" if delimiter == "\t" else repr(delimiter)
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        header = next(reader, None)
        if not header or not any(h.strip() for h in header):
            raise DataError(f"manifest {path} is empty", "write a header row and data rows")
        header = [h.strip() for h in header]
        if "" in header:
            raise DataError(
                f"manifest {path}: column {header.index('') + 1} of the header has no name",
                "name every column or remove the unnamed one; pandas writes one unless "
                "to_csv(index=False)")
        dupes = [h for h, n in Counter(header).items() if n > 1]
        if dupes:
            raise DataError(f"manifest {path}: column {dupes[0]!r} appears twice",
                            "rename one of them")
        rows = []
        end = reader.line_num
        for values in reader:
            start, end = end + 1, reader.line_num
            if not values or all(not v.strip() for v in values):
                continue  # blank line
            if len(values) != len(header):
                where = f"line {start}" if start == end else f"the row on lines {start}-{end}"
                raise DataError(
                    f"manifest {path}: {where} has {len(values)} fields, "
                    f"the header has {len(header)} (delimiter {shown})",
                    "quote values that contain the delimiter and close every quote; give every "
                    "row every column, empty values are fine",
                )
            rows.append(dict(zip(header, values)))
    except csv.Error as exc:
        raise DataError(f"manifest {path} is not valid CSV: {exc}", "fix the quoting") from None
    return header, rows


def _read_jsonl(path: Path, text: str) -> tuple[list[str], list[dict[str, str]]]:
    columns: dict[str, None] = {}
    rows = []
    for n, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, huge ints, deep nesting
            reason = (exc.msg if isinstance(exc, json.JSONDecodeError) else
                      "nested too deeply" if isinstance(exc, RecursionError) else
                      str(exc).split(":")[0])
            raise DataError(f"manifest {path}: line {n} is not valid JSON ({reason})",
                            "write one JSON object per line") from None
        if not isinstance(obj, dict):
            raise DataError(f"manifest {path}: line {n} is not a JSON object",
                            "write one JSON object per line")
        for key in obj:
            columns.setdefault(str(key), None)
        rows.append({str(k): _to_str(v) for k, v in obj.items()})
    cols = list(columns)
    if "" in cols:
        raise DataError(f"manifest {path}: a key is the empty string", "name every key")
    return cols, [{c: r.get(c, "") for c in cols} for r in rows]


def _to_str(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
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


#: longest modality column name; names become file names (data/<col>.npy, ...)
MAX_COLUMN_NAME = 100


def check_column_name(manifest: Manifest, col: str) -> None:
    """A modality column's name becomes part of file names in every stage directory, so it
    must be a plain name: no path separators, no control characters, not ``.``/``..``."""
    bad = (col in (".", "..") or len(col) > MAX_COLUMN_NAME
           or any(ch in "/\\" or unicodedata.category(ch) in ("Cc", "Cf", "Cs") for ch in col))
    if bad:
        raise DataError(
            f"manifest {manifest.path}: column name {col[:MAX_COLUMN_NAME]!r} cannot be used "
            "(a modality's name becomes a file name)",
            f"rename it: at most {MAX_COLUMN_NAME} characters, no '/', '\\' or control "
            "characters, not '.' or '..'; or set it to ignore in preprocess.columns")


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
        if manifest.types.get(col) == "binary":
            kind = _bytes_kind(manifest, col, overrides.get(col))
            if kind != "ignore":
                check_column_name(manifest, col)
                kinds[col] = kind
            continue
        typed = parquet_kind(manifest.types[col]) if col in manifest.types else None
        if overrides.get(col) in ("image", "audio") and typed is not None:
            raise DataError(f"manifest {manifest.path}: column {col!r} is of type "
                            f"{manifest.types[col]}, but preprocess.columns makes it "
                            f"{overrides[col]}", "a media column holds paths or URLs (strings)")
        kind = overrides.get(col) or typed or detect_kind([r.get(col, "") for r in manifest.rows])
        if kind != "ignore":
            check_column_name(manifest, col)
            kinds[col] = kind
    if not kinds:
        raise DataError(f"manifest {manifest.path} has no modality columns",
                        "add columns besides id, label and split")
    return kinds


#: what the hash split is keyed on (``preprocess.split_key``); a group column overrides both
SPLIT_KEYS = ("label_id", "id")


def require_column(manifest: Manifest, column: str, role: str, hint: str) -> None:
    """:class:`DataError` naming the manifest's columns when ``column`` (the ``role`` column:
    label, group) is not one of them."""
    if column not in manifest.columns:
        raise DataError(f"{role} column {column!r} is not in {manifest.path} "
                        f"(columns: {', '.join(manifest.columns)})", hint)


def row_groups(manifest: Manifest, column: str, ids: list[str]) -> list[str]:
    """The group of every row: the stripped value of ``column``; a row whose cell is empty is
    a group of its own, named ``id:<id>``."""
    require_column(manifest, column, "group", "pass --group COL naming a column, or drop --group")
    return [(row.get(column) or "").strip() or f"id:{item_id}"
            for row, item_id in zip(manifest.rows, ids)]


def assign_splits(manifest: Manifest, ids: list[str], labels: list[str], fractions: dict,
                  seed: int, key: str = "label_id",
                  groups: list[str] | None = None) -> list[str]:
    """Split per row: the ``split`` column when present, else a seeded hash split.

    The item is placed by a uniform number derived from a sha256 hash, compared with the
    cumulative fractions. What is hashed decides what can move an item:

    - ``key="label_id"``: (seed, label, id). Classes are split independently (stratified);
      correcting a label may move the item.
    - ``key="id"``: (seed, id). Not stratified (fractions hold in expectation); a label
      change never moves the item.
    - ``groups`` (one per row, see :func:`row_groups`), whatever ``key``: (seed, group). All
      rows of a group share a split; fractions hold in expectation over groups, not exactly
      per class.

    Either way appending rows (of new or existing groups) never moves an existing item.
    """
    if key not in SPLIT_KEYS:
        raise UsageError(f"config 'preprocess.split_key' is {key!r}",
                         f"use one of: {', '.join(SPLIT_KEYS)}")
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
    if groups is not None:
        keys = [f"{seed}\0group\0{g}" for g in groups]
    elif key == "id":
        keys = [f"{seed}\0id\0{item_id}" for item_id in ids]
    else:  # the original key: unchanged, so existing splits stay as they were
        keys = [f"{seed}\0{label}\0{item_id}" for item_id, label in zip(ids, labels)]
    out = []
    for text in keys:
        digest = hashlib.sha256(text.encode()).digest()
        u = int.from_bytes(digest[:8], "big") / 2**64
        out.append(next((s for s, b in zip(SPLITS, bounds) if u < b), "train"))
    return out
