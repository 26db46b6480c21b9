"""preprocess: validate a manifest, decode and normalise every item, split deterministically.

Output directory::

    meta.json            schema version, config, hashes (see mmcli.artifacts)
    items.jsonl          one line per kept item: id, row, split, label, text/categorical values
    failures.csv         row, id, column, reason for every item left out
    data/<col>.npy       images: (n, height, width, 3) uint8
                         audio: all samples concatenated, float32, with data/<col>.offsets.npy
                         numeric: (n,) float32, scaled with train statistics, NaN where missing
    state/preprocess.json  everything needed to preprocess new data the same way
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mmcli import artifacts
from mmcli.config import PreprocessConfig, to_dict
from mmcli.errors import DataError, UsageError
from mmcli.manifest import MISSING_NUMBERS, Manifest, assign_splits, column_kinds, read_manifest
from mmcli.media import MediaError, load_audio, load_image, normalize_text
from mmcli.parallel import chunks, ordered_map
from mmcli.progress import ProgressFactory, silent

CHUNK = 64
MEDIA_KINDS = ("image", "audio")


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

    def save(self, directory: Path) -> None:
        # keys keep their order (not sorted) so that modalities stay in manifest order
        artifacts.write_json(directory / "preprocess.json", self.__dict__, sort_keys=False)

    @classmethod
    def load(cls, directory: Path) -> PreprocessState:
        return cls(**artifacts.read_json(directory / "preprocess.json"))


def check_label(pstate: PreprocessState, label: str | None, where: Path) -> None:
    """A later stage's --label must be the label column that preprocess used."""
    if label is not None and label != pstate.label:
        raise DataError(
            f"--label {label!r} differs from the label column {pstate.label!r} that "
            f"preprocess used for {where}",
            f"re-run preprocess with --label {label}, or drop --label here",
        )


def preprocess(manifest_path: Path, out: Path, config: PreprocessConfig | None = None,
               progress: ProgressFactory = silent) -> dict:
    """Run the preprocess stage on a labelled manifest; returns a summary."""
    config = config or PreprocessConfig()
    _check_config(config)
    manifest = read_manifest(manifest_path)
    if config.label not in manifest.columns:
        raise DataError(
            f"label column {config.label!r} is not in {manifest.path} "
            f"(columns: {', '.join(manifest.columns)})",
            "pass --label COL or set 'label' in the config",
        )
    ids = manifest.ids()
    labels = [r.get(config.label, "").strip() for r in manifest.rows]
    splits = assign_splits(manifest, ids, labels, config.split, config.seed)
    state = PreprocessState(
        label=config.label,
        columns=column_kinds(manifest, config.label, config.columns),
        image_size=[int(v) for v in config.image_size],
        sample_rate=config.sample_rate,
        max_audio_seconds=config.max_audio_seconds,
        lowercase=config.lowercase,
        numeric_scaling=config.numeric_scaling,
    )
    with artifacts.StageWriter(out, "preprocess") as writer:
        summary = apply(manifest, ids, labels, splits, state, writer.path, config.jobs,
                        config.max_failed_fraction, progress, fit=True)
        state.save(writer.path / "state")
        summary["columns"] = state.columns
        summary["classes"] = state.classes
        writer.commit(to_dict(config), config.seed,
                      {str(manifest.path): artifacts.sha256_file(manifest.path)}, summary)
    return summary


def apply(manifest: Manifest, ids: list[str], labels: list[str] | None, splits: list[str],
          state: PreprocessState, directory: Path, jobs: int, max_failed_fraction: float,
          progress: ProgressFactory = silent, fit: bool = False) -> dict:
    """Decode and normalise every row of ``manifest`` into ``directory``.

    With ``fit`` the numeric scaling and the class list are fitted on the kept train items and
    stored in ``state``; otherwise the fitted ``state`` is applied as it is.
    """
    missing = [c for c in state.columns if c not in manifest.columns]
    if missing:
        raise DataError(f"manifest {manifest.path} lacks column {missing[0]!r}, which the "
                        f"model was trained with", "add the column; its values may be empty")
    spec = {
        "columns": state.columns, "base_dir": str(manifest.base_dir),
        "image_size": state.image_size, "sample_rate": state.sample_rate,
        "max_audio_seconds": state.max_audio_seconds, "lowercase": state.lowercase,
    }
    data_dir = directory / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    w, h = state.image_size
    appenders = {}
    offsets: dict[str, list[int]] = {}
    for col, kind in state.columns.items():
        if kind == "image":
            appenders[col] = artifacts.NpyAppender(data_dir / f"{col}.npy", np.uint8, (h, w, 3))
        elif kind == "audio":
            appenders[col] = artifacts.NpyAppender(data_dir / f"{col}.npy", np.float32)
            offsets[col] = [0]
    numeric_raw: dict[str, list[float]] = {c: [] for c, k in state.columns.items()
                                           if k == "numeric"}
    items: list[dict] = []
    failures: list[dict] = []
    tasks = [
        [(i, {c: manifest.rows[i].get(c, "") for c in state.columns}) for i in range(a, b)]
        for a, b in chunks(len(manifest.rows), CHUNK)
    ]
    with progress("preprocess", len(manifest.rows)) as bar:
        for results in ordered_map(_decode_chunk, tasks, jobs, _init_worker, (spec,)):
            for i, error, payload in results:
                label = labels[i] if labels is not None else ""
                if error is None and labels is not None and not label:
                    error = (state.label, "no label")
                if error is not None:
                    failures.append({"row": i + 1, "id": ids[i], "column": error[0],
                                     "reason": error[1]})
                    continue
                values = {}
                for col, kind in state.columns.items():
                    value = payload[col]
                    if kind in MEDIA_KINDS:
                        appenders[col].append(value[None] if kind == "image" else value)
                        if kind == "audio":
                            offsets[col].append(offsets[col][-1] + len(value))
                    elif kind == "numeric":
                        numeric_raw[col].append(value)
                    else:
                        values[col] = value
                items.append({"id": ids[i], "row": i + 1, "split": splits[i], "label": label,
                              "values": values})
            bar.advance(len(results))
    for appender in appenders.values():
        appender.close()
    for col, offs in offsets.items():
        np.save(data_dir / f"{col}.offsets.npy", np.asarray(offs, dtype=np.int64))

    total = len(manifest.rows)
    if total and len(failures) / total > max_failed_fraction:
        first = failures[0]
        raise DataError(
            f"{len(failures)} of {total} items of {manifest.path} failed "
            f"({100 * len(failures) / total:.0f}%, more than max_failed_fraction "
            f"{max_failed_fraction}); first: row {first['row']}, column {first['column']!r}: "
            f"{first['reason']}",
            "fix the files, or raise preprocess.max_failed_fraction in the config",
        )
    if not items:
        raise DataError(f"no usable items in {manifest.path}", "see the reasons above")

    train_idx = [k for k, it in enumerate(items) if it["split"] == "train"]
    if fit:
        if not train_idx:
            raise DataError(f"the train split of {manifest.path} is empty",
                            "give some rows split=train, or raise preprocess.split.train")
        state.classes = sorted({items[k]["label"] for k in train_idx})
        state.numeric = {}
    for col, raw in numeric_raw.items():
        x = np.asarray(raw, dtype=np.float64)
        if fit:
            state.numeric[col] = _fit_scaling(x[train_idx], state.numeric_scaling, col)
        offset, scale = state.numeric[col]
        np.save(data_dir / f"{col}.npy", ((x - offset) / scale).astype(np.float32))

    artifacts.write_jsonl(directory / "items.jsonl", items)
    _write_failures(directory / "failures.csv", failures)
    order = ("train", "val", "test", "predict")
    counts = {s: sum(it["split"] == s for it in items) for s in order
              if any(it["split"] == s for it in items)}
    return {"rows": total, "kept": len(items), "failed": len(failures), "splits": counts}


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
    if not 0 <= config.max_failed_fraction <= 1:
        raise UsageError(f"preprocess.max_failed_fraction is {config.max_failed_fraction}",
                         "give a fraction between 0 and 1")


# --- worker side -------------------------------------------------------------------------

_SPEC: dict = {}


def _init_worker(spec: dict) -> None:
    _SPEC.clear()
    _SPEC.update(spec)


def _decode_chunk(rows: list[tuple[int, dict]]) -> list[tuple[int, tuple | None, dict]]:
    return [_decode_row(i, values) for i, values in rows]


def _decode_row(i: int, values: dict) -> tuple[int, tuple | None, dict]:
    spec = _SPEC
    base = Path(spec["base_dir"])
    payload = {}
    for col, kind in spec["columns"].items():
        raw = (values.get(col) or "").strip()
        try:
            if kind in MEDIA_KINDS:
                if not raw:
                    raise MediaError(f"no {kind} path")
                path = Path(raw) if Path(raw).is_absolute() else base / raw
                if kind == "image":
                    payload[col] = load_image(path, tuple(spec["image_size"]))
                else:
                    payload[col] = load_audio(path, spec["sample_rate"],
                                              spec["max_audio_seconds"])
            elif kind == "numeric":
                payload[col] = _parse_number(raw)
            elif kind == "text":
                text = normalize_text(values.get(col) or "", spec["lowercase"])
                if not text:
                    raise MediaError("empty text")
                payload[col] = text
            else:
                payload[col] = raw
        except MediaError as exc:
            return i, (col, str(exc)), {}
    return i, None, payload


def _parse_number(raw: str) -> float:
    if not raw or raw.lower() in MISSING_NUMBERS:
        return math.nan
    try:
        value = float(raw)
    except ValueError:
        raise MediaError(f"{raw!r} is not a number") from None
    if math.isinf(value):
        raise MediaError(f"{raw!r} is not a finite number")
    return value
