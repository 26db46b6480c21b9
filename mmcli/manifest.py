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
import re
import unicodedata
from array import array
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator
from itertools import accumulate, repeat
from operator import itemgetter
from pathlib import Path

from mmcli import storage
from mmcli.errors import DataError, UsageError
from mmcli.kinds import detect_kind, get_kind, kind_names, media_kinds, sniff_media
from mmcli.kinds.numeric import MISSING_NUMBERS  # noqa: F401  (re-exported)

SPLITS = ("train", "val", "test")
SPLIT_ALIASES = {"train": "train", "val": "val", "valid": "val", "validation": "val",
                 "dev": "val", "test": "test"}


#: rows per block of a packed column, and per batch read from a Parquet file
BLOCK_ROWS = 65_536


class Column:
    """The cells of one manifest column, packed: per block of rows, the cells joined into one
    ``str`` (``bytes`` for a binary column) and an ``array`` of their offsets. A million short
    cells take tens of megabytes here, against about a gigabyte as one ``dict`` per row."""

    def __init__(self, binary: bool = False):
        self.binary = binary
        self._blocks: list[tuple[str | bytes, array]] = []
        self._starts: list[int] = []  # first row of each block
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def extend(self, cells: list) -> None:
        """Append cells (``str``; a binary column's: ``bytes``, ``""`` for a null)."""
        if self.binary:
            cells = [c if isinstance(c, bytes) else b"" for c in cells]
            self.add_block(b"".join(cells), array("q", accumulate(map(len, cells), initial=0)))
        else:
            self.add_block("".join(cells), array("q", accumulate(map(len, cells), initial=0)))

    def add_block(self, joined: str | bytes, offsets: array) -> None:
        """Append ``len(offsets) - 1`` cells: cell k is ``joined[offsets[k]:offsets[k + 1]]``."""
        if len(offsets) > 1:
            self._blocks.append((joined, offsets))
            self._starts.append(self._n)
            self._n += len(offsets) - 1

    def __getitem__(self, i: int) -> str | bytes:
        if not 0 <= i < self._n:
            raise IndexError(i)
        k = bisect_right(self._starts, i) - 1
        joined, offsets = self._blocks[k]
        j = i - self._starts[k]
        return self._cell(joined[offsets[j]:offsets[j + 1]])

    def __iter__(self) -> Iterator[str | bytes]:
        cell = self._cell
        for joined, offsets in self._blocks:
            o = offsets.tolist()
            yield from (cell(joined[a:b]) for a, b in zip(o, o[1:]))

    def _cell(self, value: str | bytes) -> str | bytes:
        return value if value or not self.binary else ""  # an empty binary cell reads as ""


class Manifest:
    """A manifest's rows, held by column (:class:`Column`), so that memory grows by the bytes
    of its cells and not by a ``dict`` per row.

    ``rows`` (a list of ``{column: cell}``) is accepted to build one, and
    :attr:`rows` gives them back (all rows at once: for small manifests and tests); the stages
    read :meth:`cells` and :meth:`row`.
    """

    def __init__(self, path: Path | str, columns: list[str], rows: list[dict] | None = None,
                 types: dict[str, str] | None = None, data: dict[str, Column] | None = None,
                 n_rows: int | None = None):
        #: a local path, or a URL (str) for a manifest on an fsspec filesystem
        self.path = path
        self.columns = list(columns)
        #: column -> type in the file's schema (Parquet: "double", "string", "binary"...; CSV
        #: and JSONL: none). The cells of a binary column are bytes (encoded media), not text.
        self.types = dict(types or {})
        if data is None:
            data = {c: Column(self.types.get(c) == "binary") for c in self.columns}
            for c, column in data.items():
                column.extend([r.get(c, "") for r in rows or ()])
        self.data = data
        if n_rows is None:  # (given: a JSONL manifest of empty objects has rows, no column)
            n_rows = len(next(iter(data.values()))) if data else len(rows or ())
        self._len = n_rows

    @property
    def base_dir(self) -> Path | str:
        return storage.parent(self.path) if storage.is_url(self.path) else self.path.parent

    def __len__(self) -> int:
        return self._len

    def cells(self, column: str) -> Iterable[str | bytes]:
        """The cells of ``column`` in row order; ``""`` for every row when there is none."""
        return self.data[column] if column in self.data else repeat("", len(self))

    def stripped(self, column: str) -> list[str]:
        """The cells of ``column`` stripped of outer spaces; equal values share one object
        (labels and groups repeat: a million rows of three labels hold three strings)."""
        shared: dict[str, str] = {}
        out = []
        for cell in self.cells(column):
            value = cell.strip()
            out.append(shared.setdefault(value, value) if len(shared) < BLOCK_ROWS else value)
        return out

    def row(self, i: int) -> dict[str, str | bytes]:
        """Row ``i`` (0-based) as ``{column: cell}``."""
        return {c: self.data[c][i] for c in self.columns}

    @property
    def rows(self) -> list[dict[str, str | bytes]]:
        """Every row as ``{column: cell}`` (all at once: memory grows with the manifest)."""
        columns = [self.data[c] for c in self.columns]
        if not columns:
            return [{} for _ in range(len(self))]
        return [dict(zip(self.columns, values)) for values in zip(*columns)]

    def ids(self) -> list[str]:
        """Row ids: the ``id`` column when present, else the 1-based row number."""
        if "id" not in self.columns:
            return [str(i + 1) for i in range(len(self))]
        seen: dict[str, int] = {}
        ids = []
        for i, cell in enumerate(self.data["id"], start=1):
            value = cell.strip()
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
        columns, data, n = _read_jsonl(path, text)
    else:
        delimiter = "\t" if suffix == ".tsv" else sniff_delimiter(text)
        columns, data, n = _read_csv(path, text, delimiter)
    if not n:
        raise DataError(f"manifest {path} has no rows", "add at least one row below the header")
    return Manifest(path, columns, data=data, n_rows=n)


def _add_rows(data: dict[str, Column], rows: list[list]) -> None:
    """Append a block of rows (lists of cells in column order) to the columns."""
    for k, column in enumerate(data.values()):  # (zip(*rows) is 4x slower on 65,536 rows)
        column.extend(list(map(itemgetter(k), rows)))


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


def _bytes_kind(manifest: Manifest, col: str, override: str | None) -> str:
    """The kind of a binary column: a media kind (by the leading bytes of 90% of its cells,
    or set in the config), or ignore."""
    media = media_kinds()
    if override in (*media, "ignore"):
        return override
    if override is not None:
        raise DataError(f"manifest {manifest.path}: column {col!r} holds bytes, but "
                        f"preprocess.columns makes it {override}",
                        f"a binary column can be {', '.join(media)} or ignore")
    sniffed = [sniff_media(c) for c in manifest.cells(col) if isinstance(c, bytes) and c]
    for kind in media:
        if sniffed and sum(x is not None and x[0] == kind for x in sniffed) >= 0.9 * len(sniffed):
            return kind
    formats = "; ".join(f"{k}: " + ", ".join(sorted({m[2][1:] for m in get_kind(k).magic}))
                        for k in media)
    raise DataError(f"manifest {manifest.path}: column {col!r} holds bytes that are not "
                    f"encoded media ({formats})", f"set it to ignore: preprocess: {{columns: "
                    f"{{{col}: ignore}}}}, or to {' or '.join(media)} if it is one")


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
    partitions and become columns), read one batch of rows at a time into packed columns.
    Cells become text like a CSV's (numbers in their shortest form, nulls empty); the schema's
    types are kept in :attr:`Manifest.types` so that number columns need no guessing."""
    pa = require_pyarrow()
    schema, batches = _parquet_batches(pa, path, source)
    columns, types = _parquet_types(pa, path, schema)
    data = {c: Column(types[c] == "binary") for c in columns}
    try:
        for batch in batches:
            for i, column in enumerate(data.values()):
                _add_arrow(pa, column, batch.column(i))
    except (pa.ArrowException, OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"manifest {path} cannot be read as Parquet ({first})",
                        "write it again, or check the disk") from None
    if not columns or not len(data[columns[0]]):
        raise DataError(f"manifest {path} has no rows", "write at least one row")
    return Manifest(path, columns, types=types, data=data)


def _parquet_batches(pa, path: Path | str, source=None) -> tuple:
    """(Arrow schema, iterator of record batches) of a Parquet file or data set folder."""
    try:
        if source is None and Path(path).is_dir():
            files = [str(f) for f in parquet_files(Path(path))]
            dataset = pa.dataset.dataset(files, format="parquet", partitioning="hive",
                                         partition_base_dir=str(path))
            return dataset.schema, dataset.to_batches(batch_size=PARQUET_BATCH_ROWS,
                                                      use_threads=False)
        reader = pa.parquet.ParquetFile(source or str(path))  # one file: its row groups
        return reader.schema_arrow, reader.iter_batches(batch_size=PARQUET_BATCH_ROWS)
    except (pa.ArrowException, OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"manifest {path} is not a readable Parquet file ({first})",
                        "write it again with pyarrow, pandas or Spark, or pass a CSV") from None


def _parquet_types(pa, path: Path | str, schema) -> tuple[list[str], dict[str, str]]:
    """The column names of a Parquet schema and their types; :class:`DataError` for an
    unnamed, nested or repeated column."""
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
    return columns, types


def _is_binary(pa, arrow_type) -> bool:
    return (pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type)
            or pa.types.is_fixed_size_binary(arrow_type))


def _add_arrow(pa, column: Column, values) -> None:
    """Append an Arrow array to ``column`` as CSV-like cells: numbers as their shortest text,
    nulls as ''; a binary column's cells stay bytes (encoded media, decoded like files).

    Text is taken from the array's UTF-8 buffer in one piece; when it is ASCII (ids, paths,
    numbers) its byte offsets are the cells' offsets, and no cell becomes a Python object."""
    if _is_binary(pa, values.type):
        column.extend([b if b is not None else "" for b in values.to_pylist()])
        return
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if not pa.types.is_string(values.type):
        values = pa.compute.cast(values, pa.string())
    values = pa.compute.fill_null(values, "")
    _, offsets_buffer, data_buffer = values.buffers()
    offsets = _array_of("i", offsets_buffer)[values.offset:values.offset + len(values) + 1]
    start, end = offsets[0], offsets[-1]
    raw = data_buffer[start:end].to_pybytes() if data_buffer is not None else b""
    text = raw.decode("utf-8")
    if len(text) != len(raw):  # not ASCII: byte offsets are no character offsets
        column.extend(values.to_pylist())
        return
    column.add_block(text, offsets if start == 0 else array("q", (o - start for o in offsets)))


def _array_of(typecode: str, buffer) -> array:
    """An :class:`array.array` of ``typecode`` holding a copy of ``buffer``'s bytes."""
    out = array(typecode)
    out.frombytes(memoryview(buffer))
    return out


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


def _read_csv(path: Path, text: str,
              delimiter: str) -> tuple[list[str], dict[str, Column], int]:
    # a text cell may be megabytes long (the per-item text limit applies later); the csv
    # module's limit is process-wide, so it is put back for the caller's own csv reading
    saved = csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
    try:
        return _parse_csv(path, text, delimiter)
    finally:
        csv.field_size_limit(saved)


def _parse_csv(path: Path, text: str,
               delimiter: str) -> tuple[list[str], dict[str, Column], int]:
    shown = "tab" if delimiter == "\t" else repr(delimiter)
    try:
        reader = csv.reader(_lines(text), delimiter=delimiter)
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
        data = {h: Column() for h in header}
        rows, n = [], 0
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
            rows.append(values)
            if len(rows) == BLOCK_ROWS:
                _add_rows(data, rows)
                n += len(rows)
                rows = []
        _add_rows(data, rows)
    except csv.Error as exc:
        raise DataError(f"manifest {path} is not valid CSV: {exc}", "fix the quoting") from None
    return header, data, n + len(rows)


#: a line with its end, as ``io.StringIO(text, newline="")`` splits them (``\n``, ``\r\n``, ``\r``)
_LINE = re.compile(r"[^\r\n]*(?:\r\n?|\n)|[^\r\n]+")
#: what str.splitlines also ends a line at, and io.StringIO does not
_OTHER_BREAKS = ("\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")


def _lines(text: str) -> Iterator[str]:
    """The lines of ``text``, ends kept, split as ``io.StringIO(text, newline="")`` does, but
    without its copy of the text at four bytes per character (400 MB for an 86 MB CSV)."""
    if any(ch in text for ch in _OTHER_BREAKS):  # rare: the slower exact splitter
        yield from (match.group() for match in _LINE.finditer(text))
        return
    start = 0
    while start < len(text):  # pieces of about 1 MB, each ending after a \n
        end = text.find("\n", start + (1 << 20)) + 1 or len(text)
        yield from text[start:end].splitlines(keepends=True)
        start = end


def _read_jsonl(path: Path, text: str) -> tuple[list[str], dict[str, Column], int]:
    data: dict[str, Column] = {}
    rows, n = [], 0
    for lineno, line in enumerate(_split(text, "\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, huge ints, deep nesting
            reason = (exc.msg if isinstance(exc, json.JSONDecodeError) else
                      "nested too deeply" if isinstance(exc, RecursionError) else
                      str(exc).split(":")[0])
            raise DataError(f"manifest {path}: line {lineno} is not valid JSON ({reason})",
                            "write one JSON object per line") from None
        if not isinstance(obj, dict):
            raise DataError(f"manifest {path}: line {lineno} is not a JSON object",
                            "write one JSON object per line")
        rows.append({str(k): _to_str(v) for k, v in obj.items()})
        if len(rows) == BLOCK_ROWS:
            n = _add_objects(data, rows, n)
            rows = []
    n = _add_objects(data, rows, n)
    if "" in data:
        raise DataError(f"manifest {path}: a key is the empty string", "name every key")
    return list(data), data, n


def _split(text: str, sep: str) -> Iterator[str]:
    """``text.split(sep)``, one part at a time."""
    start = 0
    while (end := text.find(sep, start)) >= 0:
        yield text[start:end]
        start = end + len(sep)
    yield text[start:]


def _add_objects(data: dict[str, Column], rows: list[dict], n: int) -> int:
    """Append a block of JSONL objects after the ``n`` rows in ``data``: a key seen first
    here becomes a column, empty in the earlier rows; a key an object lacks is empty there.
    Returns the new row count."""
    for row in rows:
        for key in row:
            if key not in data:
                data[key] = Column()
                data[key].extend([""] * n)
    for key, column in data.items():
        column.extend([r.get(key, "") for r in rows])
    return n + len(rows)


def _to_str(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


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
        if kind not in (*kind_names(), "ignore"):
            raise UsageError(f"config 'preprocess.columns.{col}' is {kind!r}",
                             f"use one of: {', '.join((*kind_names(), 'ignore'))}")
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
        if overrides.get(col) in media_kinds() and typed is not None:
            raise DataError(f"manifest {manifest.path}: column {col!r} is of type "
                            f"{manifest.types[col]}, but preprocess.columns makes it "
                            f"{overrides[col]}", "a media column holds paths or URLs (strings)")
        kind = overrides.get(col) or typed or detect_kind(manifest.cells(col))
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
    return [group or f"id:{item_id}" for group, item_id in zip(manifest.stripped(column), ids)]


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
        for i, cell in enumerate(manifest.cells("split"), start=1):
            value = SPLIT_ALIASES.get(cell.strip().lower())
            if value is None:
                raise DataError(
                    f"{manifest.path}: row {i} has split {cell!r}",
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
        keys = (f"{seed}\0group\0{g}" for g in groups)
    elif key == "id":
        keys = (f"{seed}\0id\0{item_id}" for item_id in ids)
    else:  # the original key: unchanged, so existing splits stay as they were
        keys = (f"{seed}\0{label}\0{item_id}" for item_id, label in zip(ids, labels))
    out = []
    for text in keys:
        digest = hashlib.sha256(text.encode()).digest()
        u = int.from_bytes(digest[:8], "big") / 2**64
        out.append(next((s for s, b in zip(SPLITS, bounds) if u < b), "train"))
    return out
