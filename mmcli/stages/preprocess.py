"""preprocess: validate a manifest, decode and normalise every item, split deterministically.

Output directory::

    meta.json            schema version, config, hashes (see mmcli.artifacts)
    items.jsonl          one line per kept item: id, row, split, label, text/categorical values
                         (and labels of extra tasks, group with a group column; ``missing``:
                         the absent modalities, when any, see mmcli.missing)
    failures.csv         row, id, column, reason for every item left out, and for every
                         missing cell of a kept item (its reason starts with "kept: ")
    data/<col>.npy       images: (n, height, width, 3) uint8
                         audio: all samples concatenated, float32, with data/<col>.offsets.npy
                         numeric: (n,) float32, scaled with train statistics, NaN where missing
                         video: (n, video_frames, height, width, 3) uint8, and the sound
                         tracks as data/<col>.audio.npy with data/<col>.audio.offsets.npy
                         (each kind's arrays: mmcli.kinds, Kind.arrays)
    state/preprocess.json  everything needed to preprocess new data the same way
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import os
from array import array
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mmcli import artifacts, storage
from mmcli.config import PreprocessConfig, to_dict
from mmcli.errors import DataError, UsageError
from mmcli.kinds import get_kind, media_kinds
from mmcli.manifest import (
    Manifest,
    assign_splits,
    column_kinds,
    manifest_digest,
    read_manifest,
    require_column,
    row_groups,
)
from mmcli.media import LONG_POLICIES, MediaError
from mmcli.missing import KEPT_PREFIX, MISSING_POLICIES
from mmcli.parallel import (
    Isolate,
    Runtime,
    chunks,
    connect,
    ordered_map,
    runtime_of,
    start_workers,
    worker_state,
)
from mmcli.progress import ProgressFactory, silent

CHUNK = 64
log = logging.getLogger(__name__)


@dataclass
class PreprocessState:
    """Fitted preprocessing: column kinds, media settings, numeric scaling, classes."""

    label: str
    columns: dict
    image_size: list
    sample_rate: int
    max_audio_seconds: float
    lowercase: bool
    numeric_scaling: str
    #: column -> [offset, scale]; scaled = (x - offset) / scale
    numeric: dict = field(default_factory=dict)
    classes: list = field(default_factory=list)
    #: "manifest" when the manifest's split column gave the splits, else "hash"; model
    #: selection scores on a given val split (it may hold speakers or sessions train lacks)
    split_source: str = "hash"
    # limits (defaults keep state files written before they existed loadable)
    max_image_pixels: int = PreprocessConfig.max_image_pixels
    long_audio: str = PreprocessConfig.long_audio
    max_text_chars: int = PreprocessConfig.max_text_chars
    long_text: str = PreprocessConfig.long_text
    video_frames: int = PreprocessConfig.video_frames
    max_video_seconds: float = PreprocessConfig.max_video_seconds
    long_video: str = PreprocessConfig.long_video
    max_video_pixels: int = PreprocessConfig.max_video_pixels
    #: the missing-modality policy (docs/missing.md), applied again by predict
    min_modalities: int = PreprocessConfig.min_modalities
    missing: dict = field(default_factory=dict)

    def record(self) -> dict:
        """The state as saved: the missing-modality policy only where it is not the default,
        so that chains that never set it keep the state files (and fingerprints) they had."""
        out = dict(self.__dict__)
        for key, default in (("min_modalities", 1), ("missing", {})):
            if out[key] == default:
                del out[key]
        return out

    def save(self, directory: Path) -> None:
        # keys keep their order (not sorted) so that modalities stay in manifest order
        artifacts.write_json(directory / "preprocess.json", self.record(), sort_keys=False)

    @classmethod
    def load(cls, directory: Path) -> PreprocessState:
        state = cls(**artifacts.read_json(directory / "preprocess.json"))
        _check_kinds(state.columns, directory / "preprocess.json")
        return state


def _check_kinds(columns: dict, path: Path) -> None:
    """Every column kind of a state file must be one this mmcli knows (a newer version's
    kind, or an edited file, would otherwise be read as something it is not)."""
    from mmcli.errors import ArtifactError, MmcliError

    for col, kind in columns.items():
        try:
            get_kind(kind)
        except MmcliError:
            raise ArtifactError(f"{path}: column {col!r} has kind {kind!r}, which this version "
                                "of mmcli does not know",
                                "re-run preprocess (and the later stages) with this version, "
                                "or upgrade mmcli") from None


def check_label(pstate: PreprocessState, label: str | None, where: Path) -> None:
    """A later stage's --label must be the label column that preprocess used."""
    if label is not None and label != pstate.label:
        raise DataError(
            f"--label {label!r} differs from the label column {pstate.label!r} that "
            f"preprocess used for {where}",
            f"re-run preprocess with --label {label}, or drop --label here",
        )


#: PreprocessConfig keys copied into the state (not columns: the config's are overrides)
_SETTINGS = {f.name for f in dataclasses.fields(PreprocessConfig)} - {
    "columns", "image_size", "missing"}


@storage.staged()
def preprocess(manifest_path: Path, out: Path, config: PreprocessConfig | None = None,
               progress: ProgressFactory = silent) -> dict:
    """Run the preprocess stage on a labelled manifest; returns a summary."""
    config = config or PreprocessConfig()
    _check_config(config)
    manifest = read_manifest(manifest_path)
    if len(manifest) > CHUNK:  # workers will decode: their process starts while this one
        start_workers(runtime_of(config))  # checks the manifest and its files' stamps
    require_column(manifest, config.label, "label", "pass --label COL or set 'label' in the config")
    ids = manifest.ids()
    labels = manifest.stripped(config.label)
    columns = feature_columns(manifest, config)
    groups = row_groups(manifest, config.group, ids) if config.group is not None else None
    splits = assign_splits(manifest, ids, labels, config.split, config.seed, config.split_key,
                           groups)
    _warn_unstable_splits(manifest, config, groups, splits)
    state = PreprocessState(
        # the settings every kind decodes with: the state's fields that are config keys
        **{f.name: getattr(config, f.name) for f in dataclasses.fields(PreprocessState)
           if f.name in _SETTINGS},
        columns=columns,
        image_size=[int(v) for v in config.image_size],
        split_source="manifest" if "split" in manifest.columns else "hash",
        missing=_missing_policy(config, columns),
    )
    inputs = manifest_inputs(manifest, state.columns)
    previous = _reusable_output(Path(out), state, config)
    key = artifacts.fingerprint("preprocess", to_dict(config), inputs)
    with artifacts.StageWriter(out, "preprocess", resume_key=key) as writer:
        journal = writer.journal()
        summary = apply(manifest, ids, labels, splits, state, writer.path, runtime_of(config),
                        config.max_failed_fraction, progress, fit=True,
                        media_roots=config.media_roots, previous=previous, journal=journal)
        journal.close()
        if config.tasks or groups is not None:
            summary.update(_annotate_items(manifest, config.tasks, groups,
                                           writer.path / "items.jsonl"))
        state.save(writer.path / "state")
        summary["columns"] = state.columns
        summary["classes"] = state.classes
        # how much was reused is reported, not recorded: the output is the same either way
        work = {k: summary.pop(k) for k in ("decoded", "reused", "resumed_chunks")}
        writer.commit(to_dict(config), config.seed, inputs, summary)
    return {**summary, **work}


def _missing_policy(config: PreprocessConfig, columns: dict[str, str]) -> dict[str, str]:
    """preprocess.missing checked against the modality columns; only ``drop`` entries are
    kept (``keep`` is the default)."""
    for col, policy in config.missing.items():
        if col not in columns:
            raise UsageError(f"preprocess.missing names {col!r}, which is not a modality column",
                             f"modality columns are: {', '.join(columns)}")
        if policy not in MISSING_POLICIES:
            raise UsageError(f"preprocess.missing.{col} is {policy!r}", "use keep or drop")
    if config.min_modalities > len(columns):
        raise UsageError(f"preprocess.min_modalities is {config.min_modalities}, but "
                         f"{len(columns)} modality column(s) are used",
                         f"give at most {len(columns)}")
    return {c: p for c, p in config.missing.items() if p == "drop"}


def _reusable_output(out: Path, state: PreprocessState, config: PreprocessConfig) -> Path | None:
    """``out`` when it is an intact preprocess output whose decoded media can be reused:
    same media columns and decode settings (incremental runs over a growing manifest)."""
    if not (out / artifacts.META).is_file():
        return None
    try:
        old = artifacts.open_stage(out, "preprocess", "mmcli preprocess")
        old_state = artifacts.read_json(out / "state" / "preprocess.json")
    except artifacts.NOT_REUSABLE:  # recompute everything
        return None
    if not isinstance(old_state, dict):
        return None
    media = {c: k for c, k in state.columns.items() if get_kind(k).media}
    old_media = {c: k for c, k in old_state.get("columns", {}).items() if k in media_kinds()}
    # the settings that decide how a media file decodes: equal ones allow reusing old arrays
    settings = sorted({key for k in media_kinds() for key in get_kind(k).decode_settings})
    same = media == old_media and all(
        old_state.get(key) == getattr(state, key) for key in settings)
    roots = old.meta.get("config", {}).get("media_roots", [])
    return out if same and roots == list(config.media_roots) else None


def feature_columns(manifest: Manifest, config: PreprocessConfig) -> dict[str, str]:
    """Kind of every modality column of ``manifest`` under ``config``: the label, id, split,
    the extra task label columns (``preprocess.tasks``) and the group column
    (``preprocess.group``) are no features."""
    for col in config.tasks:
        if col not in manifest.columns or col in (config.label, "id", "split"):
            raise UsageError(f"config 'preprocess.tasks' names {col!r}, which is not a column "
                             f"of {manifest.path} besides id, split and the label",
                             f"columns are: {', '.join(manifest.columns)}")
    if config.group is not None:
        if not isinstance(config.group, str) or not config.group:
            raise UsageError(f"preprocess.group is {config.group!r}",
                             "give a column name, or null for no groups")
        if config.group in (config.label, "id", "split"):
            role = "label" if config.group == config.label else config.group
            raise UsageError(f"group column {config.group!r} is the {role} column",
                             "group by another column; for a split that ignores labels set "
                             "preprocess.split_key: id")
        require_column(manifest, config.group, "group",
                       "pass --group COL naming a column, or drop --group")
    not_features = [*config.tasks, *([config.group] if config.group is not None else [])]
    return column_kinds(manifest, config.label,
                        {**config.columns, **dict.fromkeys(not_features, "ignore")})


def _annotate_items(manifest: Manifest, tasks: list, groups: list[str] | None,
                    items_path: Path) -> dict:
    """Add the extra task labels (``labels``) and the ``group`` to every item; returns the
    summary of groups (distinct groups per split)."""
    items = artifacts.read_jsonl(items_path)
    for it in items:
        if tasks:
            it["labels"] = {col: (manifest.data[col][it["row"] - 1] or "").strip()
                            for col in tasks}
        if groups is not None:
            it["group"] = groups[it["row"] - 1]
    artifacts.write_jsonl(items_path, items)
    if groups is None:
        return {}
    per_split: dict[str, set] = {}
    for it in items:
        per_split.setdefault(it["split"], set()).add(it["group"])
    return {"groups": {s: len(per_split[s]) for s in ("train", "val", "test") if s in per_split}}


def _warn_unstable_splits(manifest: Manifest, config: PreprocessConfig,
                          groups: list[str] | None, splits: list[str]) -> None:
    """Warn of what makes the split unstable or leaky: row numbers as ids in the hash, and a
    manifest split column that puts a group in two splits."""
    if "split" in manifest.columns:
        if groups is None:
            return
        seen: dict[str, set] = {}
        for group, split in zip(groups, splits):
            seen.setdefault(group, set()).add(split)
        shared = [g for g, s in seen.items() if len(s) > 1]
        if shared:
            log.warning("%d group(s) of column %r are in more than one split of the split "
                        "column of %s (first: %r in %s); their items leak across splits",
                        len(shared), config.group, manifest.path, shared[0],
                        ", ".join(sorted(seen[shared[0]], key=("train", "val", "test").index)))
        return
    ids_hashed = groups is None or any(not (cell or "").strip()
                                       for cell in manifest.cells(config.group))
    if "id" not in manifest.columns and ids_hashed:
        log.warning("%s has no id column: items are numbered by row, so deleting or inserting "
                    "a row moves later items to other splits; add an id column of stable, "
                    "unique ids", manifest.path)


#: media cells whose digest line is remembered (a file named by many rows is stat'ed once)
_STAMP_MEMO = 65_536


def manifest_inputs(manifest: Manifest, columns: dict[str, str]) -> dict[str, str]:
    """The input record of a stage that reads a manifest: the manifest's sha256, and a digest
    of every referenced media file's path, size and modification time (like make, so that
    replacing a file re-runs the stage without hashing every file's content).

    Cells are read in one pass, row by row; a path that repeats is stat'ed once."""
    import hashlib

    media = [c for c, kind in columns.items() if get_kind(kind).media]
    # remote files: one metadata request each, many at a time (they are network round trips)
    remote = storage.stamps(_remote_paths(manifest, media))
    digest = hashlib.sha256()
    lines: dict[str, bytes] = {}
    for cells in zip(*(manifest.cells(c) for c in media)):
        for cell in cells:
            # (media bytes in a Parquet cell are covered by the manifest's own hash)
            if not isinstance(cell, str) or not cell.strip():
                continue
            line = lines.get(cell)
            if line is None:
                if len(lines) >= _STAMP_MEMO:
                    lines.clear()
                line = lines[cell] = _stamp_line(manifest.resolve(cell.strip()), remote)
            digest.update(line)
    return {str(manifest.path): manifest_digest(manifest.path), "media": digest.hexdigest()}


def _remote_paths(manifest: Manifest, media: list[str]) -> list[str]:
    """The distinct URLs that the ``media`` columns' cells resolve to."""
    base_remote = storage.is_url(manifest.base_dir)
    urls = set()
    for col in media:
        for cell in manifest.cells(col):
            if isinstance(cell, str) and cell.strip() and (base_remote or "://" in cell):
                path = manifest.resolve(cell.strip())
                if storage.is_url(path):
                    urls.add(path)
    return sorted(urls)


def _stamp_line(path: Path | str, remote: dict[str, str]) -> bytes:
    """A media file's line in the input digest: its path, size and modification time."""
    if storage.is_url(path):
        return f"{path}\0{remote[path]}\n".encode()
    try:
        st = os.stat(path)
        return f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode()
    except (OSError, ValueError):  # ValueError: a NUL byte in the path
        return f"{path}\0missing\n".encode()


def apply(manifest: Manifest, ids: list[str], labels: list[str] | None, splits: list[str],
          state: PreprocessState, directory: Path, jobs: int | Runtime,
          max_failed_fraction: float,
          progress: ProgressFactory = silent, fit: bool = False,
          media_roots: list | tuple = (), previous: Path | None = None,
          journal: artifacts.Journal | None = None) -> dict:
    """Decode and normalise every row of ``manifest`` into ``directory``.

    With ``fit`` the numeric scaling and the class list are fitted on the kept train items and
    stored in ``state``; otherwise the fitted ``state`` is applied as it is. With
    ``media_roots`` media are read only from inside those folders (see :func:`confine`).

    Incremental: with ``previous`` (an earlier output made with the same decode settings), a
    media file whose content hash is found there is copied from it instead of decoded.
    Resumable: with ``journal``, every completed chunk is checkpointed, and the chunks an
    interrupted earlier run completed (``journal.records``) are not done again.

    Rows stream through: items go to ``items.jsonl`` as their chunk completes, and only
    compact per-item state (numbers, audio lengths, a train flag) stays in memory.
    """
    missing = [c for c in state.columns if c not in manifest.columns]
    if missing:
        raise DataError(f"manifest {manifest.path} lacks column {missing[0]!r}, which the "
                        f"model was trained with", "add the column; its values may be empty")
    for kind in sorted(set(state.columns.values())):
        get_kind(kind).require()
    old = _Previous(previous, vars(state)) if previous is not None else None
    done = journal.records if journal is not None else []
    with _Output(directory, state, done) as out:
        spec = _decode_spec(manifest, state, media_roots, old)
        artifacts.write_jsonl(directory / "items.jsonl", _decode_all(
            manifest, _Rows(ids, labels, splits), state, spec, jobs, progress, out, old, journal))
    _check_failures(manifest, len(manifest), out.kept, out.failures, max_failed_fraction)
    if fit:
        _fit_classes(state, out, manifest)
        _check_train_presence(out, state, manifest.path)
        _fit_numeric(state, out)
    _write_numeric(out, state, directory / "data")
    _write_failures(directory / "failures.csv",
                    sorted(out.failures + out.kept_cells, key=lambda f: f["row"]))
    order = ("train", "val", "test", "predict")
    summary = {"rows": len(manifest), "kept": out.kept, "failed": len(out.failures),
               "splits": {s: out.splits[s] for s in order if out.splits[s]},
               **out.counts, "resumed_chunks": len(done)}
    if out.kept_cells:
        summary["missing_cells"] = dict(sorted(Counter(f["column"]
                                                       for f in out.kept_cells).items()))
    if fit:
        # kept, and counted as errors by eval: the model cannot predict a class it never saw
        known = set(state.classes)
        unseen = Counter({label: n for label, n in out.labels.items() if label not in known})
        summary["unseen_labels"] = dict(sorted(unseen.items()))
    return summary


@dataclass
class _Rows:
    """What apply knows of every row besides its cells: id, label (None: unlabelled), split."""

    ids: list[str]
    labels: list[str] | None
    splits: list[str]


def _decode_spec(manifest: Manifest, state: PreprocessState, media_roots,
                 old: _Previous | None) -> dict:
    """The settings every decode worker gets (see :func:`_decode_row`)."""
    return {
        # the decode settings and limits every kind reads what it needs from
        **{k: v for k, v in vars(state).items() if k not in ("numeric", "classes")},
        # absolute: workers of a Dask cluster do not share this process's working directory
        "columns": state.columns, "base_dir": (manifest.base_dir if storage.is_url(
            manifest.base_dir) else os.path.abspath(manifest.base_dir)),
        "media_roots": [str(r) for r in resolve_media_roots(media_roots)],
        "reuse": old.digests if old is not None else {},
    }


class _Tasks:
    """The decode tasks: chunks of CHUNK rows as ``(row index, {column: cell})``, from chunk
    ``first`` on, each made only when the workers are ready for it."""

    def __init__(self, manifest: Manifest, columns: dict[str, str], first: int):
        self.columns = {c: manifest.data[c] for c in columns}
        self.bounds = chunks(len(manifest), CHUNK)[first:]

    def __len__(self) -> int:
        return len(self.bounds)

    def __iter__(self):
        for a, b in self.bounds:
            yield [(i, {c: cells[i] for c, cells in self.columns.items()}) for i in range(a, b)]


def _decode_all(manifest: Manifest, rows: _Rows, state: PreprocessState, spec: dict,
                jobs: int | Runtime, progress: ProgressFactory, out: _Output,
                old: _Previous | None, journal: artifacts.Journal | None) -> Iterator[dict]:
    """The kept items, in row order, as their chunks complete: first those of the chunks done
    before (``out.done``), then the rest, decoded in order on ``jobs``; each completed chunk is
    added to ``out`` and checkpointed in ``journal``."""
    yield from (item for record in out.done for item in record["items"])
    done = len(out.done)
    # a row whose decoding kills the worker process (Dask retries it elsewhere first) is left
    # out like any undecodable item, naming its media columns
    crashed = "/".join(c for c, k in state.columns.items() if get_kind(k).media)
    isolate = Isolate(split=lambda chunk: [[row] for row in chunk],
                      lost=lambda chunk, why: [(i, (crashed, why), None) for i, _ in chunk])
    tasks = _Tasks(manifest, state.columns, done)
    with progress("preprocess", len(manifest)) as bar:
        bar.advance(sum(len(r["items"]) + len(r["failures"]) for r in out.done))
        for k, results in enumerate(ordered_map(_decode_chunk, tasks, jobs, _init_worker,
                                                (spec,), isolate=isolate), start=done):
            record = _collect_chunk(k, results, rows, state, out, old)
            out.add(record)
            if journal is not None:
                record["rows"] = out.flush()
                journal.append(record)
            bar.advance(len(results))
            yield from record["items"]


def _collect_chunk(k: int, results: list, rows: _Rows, state: PreprocessState, out: _Output,
                   old: _Previous | None) -> dict:
    """The journal record of decoded chunk ``k``: its items, failures, numbers and audio
    lengths; the chunk's media arrays are appended to ``out`` here."""
    record = {"chunk": k, "items": [], "failures": [], "audio": {c: [] for c in out.offsets},
              "numeric": {c: [] for c in out.numeric}, "decoded": 0, "reused": 0,
              "kept_cells": []}
    for i, error, payload in results:
        label = rows.labels[i] if rows.labels is not None else ""
        absent: dict[str, str] = {}
        if error is None:
            error, absent = missing_cells(payload, state)
        if error is None and rows.labels is not None and not label:
            error = (state.label, "no label")
        if error is not None:
            record["failures"].append({"row": i + 1, "id": rows.ids[i], "column": error[0],
                                       "reason": error[1]})
            log.info("row %d (id %s) left out: column %r: %s", i + 1, rows.ids[i], error[0],
                     error[1])
            continue
        item = {"id": rows.ids[i], "row": i + 1, "split": rows.splits[i], "label": label,
                "values": {}}
        reused = _keep_values(payload, item["values"], record, state, out, old)
        if absent:
            item["missing"] = list(absent)
            for col, why in absent.items():
                log.info("row %d (id %s) kept without column %r: %s", i + 1, rows.ids[i],
                         col, why)
            record["kept_cells"] += [{"row": i + 1, "id": rows.ids[i], "column": col,
                                      "reason": KEPT_PREFIX + why} for col, why in absent.items()]
        if out.appenders:
            item["hashes"] = payload["__hashes__"]
            record["reused" if reused else "decoded"] += 1
        record["items"].append(item)
    return record


def _keep_values(payload: dict, values: dict, record: dict, state: PreprocessState,
                 out: _Output, old: _Previous | None) -> bool:
    """Put a kept row's decoded cells where they go: media arrays to ``out``'s appenders,
    numbers and audio lengths to ``record``, text and categories to ``values``. Returns
    whether all its media came from the previous output (none was decoded)."""
    reused = True
    for col, kind in state.columns.items():
        value = payload[col]
        if get_kind(kind).media:
            if isinstance(value, str):  # a content hash found in the previous output
                value = old.array(col, value)
            else:
                reused = False
            _append(vars(state), col, value, out.appenders, record["audio"])
        elif get_kind(kind).stored == "numbers":
            record["numeric"][col].append(value)
        else:
            values[col] = value
    return reused


class _Output:
    """The output apply builds as chunks complete: media arrays appended to ``data/``;
    numbers, audio offsets, failures and counts (not the items: they stream to
    ``items.jsonl``) kept compactly until the end. Starts from the chunks an interrupted run
    completed (``done``)."""

    def __init__(self, directory: Path, state: PreprocessState, done: list[dict]):
        self.done, self.data_dir = done, directory / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.numeric = {c: array("d") for c, k in state.columns.items()
                        if get_kind(k).stored == "numbers"}
        self.failures: list[dict] = []
        self.kept_cells: list[dict] = []  # the missing cells of kept items (failures.csv)
        self.train_missing: Counter = Counter()  # column -> train items that miss it
        self.counts = {"decoded": 0, "reused": 0}
        self.kept, self.splits, self.labels = 0, Counter(), Counter()
        self.train = array("b")  # per kept item: 1 in the train split
        self.train_labels: set[str] = set()
        self.appenders, self.offsets = _open_arrays(vars(state), self.data_dir, done)
        for record in done:
            self.add(record)

    def add(self, record: dict) -> None:
        """Add a chunk's record (its media are already appended)."""
        for item in record["items"]:
            self.splits[item["split"]] += 1
            self.labels[item["label"]] += 1
            self.train.append(item["split"] == "train")
            if item["split"] == "train":
                self.train_labels.add(item["label"])
                self.train_missing.update(item.get("missing", ()))
        self.kept += len(record["items"])
        self.failures += record["failures"]
        self.kept_cells += record.get("kept_cells", [])
        for col, values in self.numeric.items():
            values.extend(record["numeric"][col])
        for col, offsets in self.offsets.items():
            for n in record["audio"][col]:
                offsets.append(offsets[-1] + n)
        self.counts["decoded"] += record["decoded"]
        self.counts["reused"] += record["reused"]

    def flush(self) -> dict[str, int]:
        """Flush the media arrays to disk; returns their row counts (for the journal)."""
        for appender in self.appenders.values():
            appender.flush()
        return {c: a.rows for c, a in self.appenders.items()}

    def __enter__(self) -> _Output:
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is not None:
            return
        for appender in self.appenders.values():
            appender.close()
        for col, offsets in self.offsets.items():
            np.save(self.data_dir / f"{col}.offsets.npy", np.asarray(offsets, dtype=np.int64))


def _check_failures(manifest: Manifest, total: int, kept: int, failures: list[dict],
                   max_failed_fraction: float) -> None:
    """The failure policy: :class:`DataError` when more than ``max_failed_fraction`` of the
    ``total`` rows failed, or when no item is left (``kept``)."""
    if total and len(failures) / total > max_failed_fraction:
        first = failures[0]
        raise DataError(
            f"{len(failures)} of {total} items of {manifest.path} failed "
            f"({100 * len(failures) / total:.0f}%, more than max_failed_fraction "
            f"{max_failed_fraction}); first: row {first['row']}, column {first['column']!r}: "
            f"{first['reason']}",
            "fix the files, or raise preprocess.max_failed_fraction in the config",
        )
    if not kept:
        first = failures[0] if failures else None
        reason = (f"; first: row {first['row']}, column {first['column']!r}: {first['reason']}"
                  if first else "")
        raise DataError(f"no usable items in {manifest.path}: all {total} failed{reason}",
                        "fix the files, or check the limits in the preprocess config")


def _fit_classes(state: PreprocessState, out: _Output, manifest: Manifest) -> None:
    """The class list: the labels of the kept train items."""
    if not any(out.train):
        raise DataError(f"the train split of {manifest.path} is empty",
                        "give some rows split=train, or raise preprocess.split.train")
    state.classes = sorted(out.train_labels)


def _fit_numeric(state: PreprocessState, out: _Output) -> None:
    """The scaling of every numeric column, fitted on the kept train items."""
    train = np.asarray(out.train, dtype=np.int8).astype(bool)
    state.numeric = {col: _fit_scaling(np.asarray(raw, dtype=np.float64)[train],
                                       state.numeric_scaling, col)
                     for col, raw in out.numeric.items()}


def _write_numeric(out: _Output, state: PreprocessState, data_dir: Path) -> None:
    """Every numeric column scaled with ``state``'s scaling, saved."""
    for col, raw in out.numeric.items():
        offset, scale = state.numeric[col]
        x = np.asarray(raw, dtype=np.float64)
        np.save(data_dir / f"{col}.npy", ((x - offset) / scale).astype(np.float32))


def _open_arrays(spec: dict, data_dir: Path, done: list[dict]
                 ) -> tuple[dict[str, artifacts.NpyAppender], dict[str, array]]:
    """Appenders of the media columns' arrays (:meth:`~mmcli.kinds.base.Kind.arrays`, named
    ``<col><suffix>``) resumed after the chunks in ``done``, and the item offsets of the
    ragged ones, from 0 (the journal's "audio" key holds every ragged array's item lengths)."""
    appenders, offsets = {}, {}
    for col, kind in spec["columns"].items():
        for suffix, (dtype, shape) in get_kind(kind).arrays(spec).items():
            name = col + suffix
            resume = done[-1]["rows"][name] if done else None
            appenders[name] = artifacts.NpyAppender(data_dir / f"{name}.npy", dtype,
                                                    shape if shape is not None else (),
                                                    resume_rows=resume)
            if shape is None:
                offsets[name] = array("q", [0])
    return appenders, offsets


def _append(spec: dict, col: str, value, appenders: dict, lengths: dict) -> None:
    """Append one decoded media value to its column's arrays (a ragged array's item length
    to ``lengths``)."""
    kind = get_kind(spec["columns"][col])
    for (suffix, (_, shape)), part in zip(kind.arrays(spec).items(), kind.parts(value)):
        appenders[col + suffix].append(part[None] if shape is not None else part)
        if shape is None:
            lengths[col + suffix].append(len(part))


def _check_train_presence(out: _Output, state: PreprocessState, path) -> None:
    """Refuse a modality column missing in every train item: nothing to fit it on."""
    n_train = sum(out.train)
    for col in state.columns:
        if n_train and out.train_missing[col] == n_train:
            first = next(f for f in out.kept_cells if f["column"] == col)
            raise DataError(
                f"column {col!r} of {path} has no usable cell in its {n_train} train "
                f"items; first: row {first['row']}: {first['reason'][len(KEPT_PREFIX):]}",
                f"fix the files, or drop the column with '{col}: ignore' under "
                "preprocess.columns in the config")


def _fit_scaling(x: np.ndarray, method: str, col: str) -> list[float]:
    x = x[np.isfinite(x)]
    if x.size == 0:
        return [0.0, 1.0]
    if method == "minmax":
        lo, hi = float(x.min()), float(x.max())
        return [lo, hi - lo if hi > lo else 1.0]
    mean, std = float(x.mean()), float(x.std())
    return [mean, std if std > 0 else 1.0]


def _write_failures(path: Path, failures: list[dict]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, ["row", "id", "column", "reason"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(failures)


def read_failures(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _check_config(config: PreprocessConfig) -> None:
    if config.numeric_scaling not in ("standard", "minmax"):
        raise UsageError(f"preprocess.numeric_scaling is {config.numeric_scaling!r}",
                         "use 'standard' or 'minmax'")
    if (len(config.image_size) != 2 or not all(isinstance(v, int) and v > 0
                                               for v in config.image_size)):
        raise UsageError(f"preprocess.image_size is {config.image_size!r}",
                         "give [width, height] in pixels")
    if config.sample_rate <= 0 or config.max_audio_seconds <= 0:
        raise UsageError("preprocess.sample_rate and max_audio_seconds must be positive",
                         "e.g. sample_rate: 16000")
    if not isinstance(config.min_modalities, int) or config.min_modalities < 1:
        raise UsageError(f"preprocess.min_modalities is {config.min_modalities!r}",
                         "give a whole number of modalities, 1 or more")
    if not isinstance(config.missing, dict):
        raise UsageError(f"preprocess.missing is {config.missing!r}",
                         "give a mapping of column to keep or drop, e.g. {photo: drop}")
    if not 0 <= config.max_failed_fraction <= 1:
        raise UsageError(f"preprocess.max_failed_fraction is {config.max_failed_fraction}",
                         "give a fraction between 0 and 1")
    if config.max_image_pixels <= 0 or config.max_text_chars <= 0:
        raise UsageError("preprocess.max_image_pixels and max_text_chars must be positive",
                         "e.g. max_image_pixels: 50000000, max_text_chars: 100000")
    if config.video_frames < 1 or config.max_video_seconds <= 0 or config.max_video_pixels <= 0:
        raise UsageError("preprocess.video_frames, max_video_seconds and max_video_pixels must "
                         "be positive", "e.g. video_frames: 8, max_video_seconds: 600")
    for key in ("long_audio", "long_text", "long_video"):
        if getattr(config, key) not in LONG_POLICIES:
            raise UsageError(f"preprocess.{key} is {getattr(config, key)!r}",
                             "use 'cut' or 'fail'")
    resolve_media_roots(config.media_roots)
    connect(runtime_of(config))  # an unknown executor or scheduler fails now


# --- worker side -------------------------------------------------------------------------

#: what the decoding workers need (emptied after an in-process map)
_SPEC: dict = worker_state()


def _init_worker(spec: dict) -> None:
    _SPEC.clear()
    _SPEC.update(spec)


def _decode_chunk(rows: list[tuple[int, dict]]) -> list[tuple[int, tuple | None, dict]]:
    return [_decode_row(i, values) for i, values in rows]


def _decode_row(i: int, values: dict) -> tuple[int, tuple | None, dict]:
    spec = _SPEC
    payload: dict = {}
    absent: dict[str, str] = {}
    hashes: dict[str, str] = {}
    for col, kind in spec["columns"].items():
        cell = values.get(col) or ""
        try:
            if get_kind(kind).media:
                hashes[col], payload[col] = _decode_media_cell(cell, kind, col, spec)
            else:
                payload[col] = get_kind(kind).parse(cell if isinstance(cell, str) else "", spec)
        except MediaError as exc:  # the modality is missing for this row (missing_cells)
            absent[col] = str(exc)
    payload["__hashes__"] = hashes
    if absent:
        payload["__missing__"] = absent
    return i, None, payload


def _decode_media_cell(cell, kind: str, col: str, spec: dict) -> tuple[str, object]:
    """(content digest, decoded value) of a media cell: encoded bytes, a URL, or a path
    (relative to the manifest's folder, confined to the media roots when there are any)."""
    if isinstance(cell, bytes):
        return _decode_bytes(cell, kind, col, spec)
    raw = cell.strip()
    if not raw:
        raise MediaError(f"no {kind} path")
    roots = [Path(r) for r in spec.get("media_roots", ())]
    path = storage.join(spec["base_dir"], raw)
    if storage.is_url(path):
        if roots:
            raise MediaError(f"{raw!r} is a URL; media roots allow only local "
                             "files inside them; refused")
        return _decode_url(path, kind, col, spec)
    if roots:
        path = confine(path, roots, raw)
    return _decode_media(path, kind, col, spec)


def missing_cells(payload: dict, state: PreprocessState) -> tuple[tuple | None, dict[str, str]]:
    """Apply the missing-modality policy to a decoded row: (the row's error when it is left
    out, else None; {column: reason} of its absent cells, whose stand-ins are put in
    ``payload``). A row is left out when a ``missing: drop`` column is absent or fewer than
    ``min_modalities`` modalities are usable."""
    absent = payload.pop("__missing__", {})
    if not absent:
        return None, {}
    drop = [c for c in absent if state.missing.get(c) == "drop"]
    if drop:
        return (drop[0], absent[drop[0]]), {}
    usable = len(state.columns) - len(absent)
    if usable < state.min_modalities:
        col, why = next(iter(absent.items()))
        if len(absent) > 1 or usable > 0:
            why += (f"; {usable} of {len(state.columns)} modalities usable "
                    f"({', '.join(absent)} missing), fewer than preprocess.min_modalities "
                    f"= {state.min_modalities}")
        return (col, why), {}
    for col in absent:
        payload[col] = get_kind(state.columns[col]).missing_value(vars(state))
    return None, absent


def _decode_media(path: Path, kind: str, col: str, spec: dict) -> tuple[str, object]:
    """(content digest, decoded array) of a local media file; the digest instead of the
    array when the previous output has it (the parent copies the old arrays)."""
    digest = _content_digest(path)
    if digest in spec["reuse"].get(col, ()):
        return digest, digest
    return digest, get_kind(kind).load(path, spec)


def _decode_bytes(data: bytes, kind: str, col: str, spec: dict) -> tuple[str, object]:
    """:func:`_decode_media` of encoded media held in a manifest cell (a Parquet binary
    column): written to a private temporary file and decoded like any file, so the limits,
    reasons and content digest are a file's."""
    import tempfile

    from mmcli.kinds import sniff_media

    sniffed = sniff_media(data)
    fd, tmp = tempfile.mkstemp(prefix="mmcli-", suffix=sniffed[1] if sniffed else "")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            return _decode_media(Path(tmp), kind, col, spec)
        except MediaError as exc:
            raise MediaError(str(exc).replace(tmp, f"the {len(data)}-byte cell")) from None
    finally:
        os.unlink(tmp)


def _decode_url(url: str, kind: str, col: str, spec: dict) -> tuple[str, object]:
    """:func:`_decode_media` of a remote file, fetched into a temporary file; reasons name
    the URL."""
    try:
        with storage.fetched(url) as tmp:
            try:
                return _decode_media(tmp, kind, col, spec)
            except MediaError as exc:
                raise MediaError(str(exc).replace(str(tmp), url)) from None
    except FileNotFoundError:
        raise MediaError(f"file not found: {url}") from None
    except OSError as exc:
        raise MediaError(f"cannot read {url}: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:300]


def _content_digest(path: Path) -> str:
    """sha256 of a media file's bytes (first 32 hex digits): the item's identity for reuse.

    A file that cannot be read gets no digest; the decoder then reports why."""
    import hashlib
    import stat

    h = hashlib.sha256()
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a pipe would block; the loader says why
            return ""
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
    except (OSError, ValueError):
        return ""
    return h.hexdigest()[:32]


class _Previous:
    """Decoded media of an earlier preprocess output, looked up by content hash."""

    def __init__(self, directory: Path, spec: dict):
        self.directory = directory
        self.spec = spec
        self.digests: dict[str, dict[str, int]] = {}
        items = artifacts.read_jsonl(directory / "items.jsonl")
        for col, kind in spec["columns"].items():
            if get_kind(kind).media:
                self.digests[col] = {it["hashes"][col]: k for k, it in enumerate(items)
                                     if it.get("hashes", {}).get(col)}
        self._arrays: dict[str, np.ndarray] = {}

    def _load(self, name: str) -> np.ndarray:
        if name not in self._arrays:
            self._arrays[name] = artifacts.load_npy(self.directory / "data" / f"{name}.npy")
        return self._arrays[name]

    def array(self, col: str, digest: str):
        """The decoded value of ``col`` whose content hash is ``digest``."""
        k = self.digests[col][digest]
        kind = get_kind(self.spec["columns"][col])
        parts = []
        for suffix, (_, shape) in kind.arrays(self.spec).items():
            data = self._load(col + suffix)
            if shape is not None:
                parts.append(np.asarray(data[k]))
                continue
            offsets = self._load(f"{col}{suffix}.offsets")
            parts.append(np.asarray(data[offsets[k]:offsets[k + 1]]))
        return kind.join(tuple(parts))


def resolve_media_roots(roots) -> list[Path]:
    """The media roots as absolute paths with symlinks resolved; each must be a folder."""
    out = []
    for root in roots or ():
        if not isinstance(root, (str, Path)):
            raise UsageError(f"media root {root!r} is not a path",
                             "give preprocess.media_roots as a list of folder paths")
        path = Path(root).expanduser()
        if not path.is_dir():
            raise UsageError(f"media root {root} is not a directory",
                             "pass existing folders to --media-root or to media_roots in "
                             "the config")
        out.append(path.resolve())
    return out


def confine(path: Path, roots: list[Path], raw: str) -> Path:
    """``path`` with ``..`` and symlinks resolved, or :class:`MediaError` when it is not inside
    one of ``roots`` (already resolved).

    The resolved path is what gets read, so a symlink cannot lead outside after the check
    unless someone rewrites the folders under the roots while preprocess runs.
    """
    try:
        real = path.resolve()
    except ValueError:  # a NUL byte
        raise MediaError(f"invalid path {raw[:200]!r}") from None
    except (OSError, RuntimeError) as exc:  # a symlink loop, a name too long
        raise MediaError(f"cannot resolve path {raw[:200]!r}: {exc}") from None
    if not any(real == root or real.is_relative_to(root) for root in roots):
        raise MediaError(f"path {raw!r} leads to {real}, outside the media roots "
                         f"({', '.join(str(r) for r in roots)}); refused")
    return real

