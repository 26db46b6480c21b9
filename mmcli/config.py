"""Stage configs: dataclasses that round-trip to YAML, with unknown keys rejected.

A config file is YAML with optional top-level ``label`` and ``seed`` and one section per stage::

    label: label
    seed: 0
    preprocess: {numeric_scaling: minmax, columns: {photo: image}}
    extract: {text: [tfidf]}
    fuse: {method: tensor}
    train: {model: mlp, params: {epochs: 100}}

Precedence: command-line flag > config file > default. The resolved config is written into
every stage's ``meta.json``.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from mmcli.errors import UsageError

STAGES = ("preprocess", "extract", "fuse", "train", "eval", "predict")
TOP_LEVEL = ("label", "seed", "pipeline", *STAGES)
#: keys that say how a stage runs, never what it computes: left out of meta.json and of
#: fingerprints, so outputs are byte-identical whatever their values (docs/scaling.md)
RUNTIME_KEYS = ("jobs", "executor", "scheduler")


@dataclass
class PreprocessConfig:
    label: str = "label"
    seed: int = 0
    #: column -> kind (image, audio, video, text, numeric, categorical) or "ignore"; overrides
    #: detection
    columns: dict = field(default_factory=dict)
    #: fractions of the deterministic split used when the manifest has no ``split`` column
    split: dict = field(default_factory=lambda: {"train": 0.7, "val": 0.15, "test": 0.15})
    #: what that split hashes: "label_id" (seed, label, id: stratified) or "id" (seed, id: a
    #: corrected label never moves an item); a group column overrides it
    split_key: str = "label_id"
    #: a column (speaker, session, patient...) whose values never share two splits: the split
    #: hashes (seed, group value); kept as items' ``group`` (not a feature); null: none
    group: Any = None
    #: "standard" ((x-mean)/std) or "minmax" ((x-min)/(max-min)), fitted on train
    numeric_scaling: str = "standard"
    #: images are decoded to RGB and resized to [width, height]
    image_size: list = field(default_factory=lambda: [64, 64])
    #: audio is decoded, mixed to mono and resampled to this rate (Hz)
    sample_rate: int = 16000
    #: limit on audio duration (seconds); at most this much of a file is read
    max_audio_seconds: float = 30.0
    #: longer audio: "cut" (keep the first max_audio_seconds) or "fail" (leave the item out)
    long_audio: str = "cut"
    #: images of more pixels (width x height, read from the header) are left out, undecoded
    max_image_pixels: int = 50_000_000
    #: limit on a text cell, in characters after normalisation
    max_text_chars: int = 100_000
    #: longer text: "cut" (keep the first max_text_chars) or "fail" (leave the item out)
    long_text: str = "cut"
    #: text is NFKC-normalised, whitespace-collapsed and, if true, lower-cased
    lowercase: bool = True
    #: video: frames sampled evenly over a clip (each resized to image_size)
    video_frames: int = 8
    #: limit on video duration (seconds); longer clips: see long_video
    max_video_seconds: float = 600.0
    #: longer video: "cut" (sample frames from its first max_video_seconds) or "fail"
    long_video: str = "cut"
    #: videos of larger frames (width x height, read from the stream header) are left out
    max_video_pixels: int = 3840 * 2160
    #: the stage fails when more than this fraction of items fail to decode
    max_failed_fraction: float = 0.1
    #: a row is kept when at least this many of its modalities are usable; an empty or
    #: undecodable cell makes its modality missing for the row (docs/missing.md)
    min_modalities: int = 1
    #: column -> keep (default: the modality may be missing) or drop (leave the row out)
    missing: dict = field(default_factory=dict)
    #: when non-empty, media are read only from inside these folders (see docs/failures.md)
    media_roots: list = field(default_factory=list)
    #: worker processes for decoding; 0 means all cores
    jobs: int = 0
    #: local (a process pool) or dask (a Dask cluster; see docs/scaling.md)
    executor: str = "local"
    #: with executor dask: a scheduler address (tcp://HOST:8786); null starts a local cluster
    scheduler: Any = None
    #: extra label columns kept as items' ``labels`` (not features) for train.tasks
    tasks: list = field(default_factory=list)


@dataclass
class ExtractConfig:
    #: null: the label column preprocess used; otherwise checked against it
    label: Any = None
    seed: int = 0
    #: extractor names per modality kind (one field per kind of mmcli.kinds), applied to every
    #: column of that kind; the defaults (each kind's ``default_extractors``) won the
    #: comparison in docs/extractors.md (`mmcli extract --list` shows every choice);
    #: NAME(auto), e.g. frames(auto), uses an extractor only where it suits the train data
    image: list = field(default_factory=lambda: _default_extractors("image"))
    audio: list = field(default_factory=lambda: _default_extractors("audio"))
    text: list = field(default_factory=lambda: _default_extractors("text"))
    numeric: list = field(default_factory=lambda: _default_extractors("numeric"))
    categorical: list = field(default_factory=lambda: _default_extractors("categorical"))
    video: list = field(default_factory=lambda: _default_extractors("video"))
    #: extractor name -> parameters, e.g. {word2vec: {vector_size: 100}}
    params: dict = field(default_factory=dict)
    #: auto (a GPU when present), cpu or cuda: for every extractor with a ``device``
    #: parameter (cnn, the pretrained backbones) left at auto
    device: str = "auto"
    #: worker processes; 0 means all cores
    jobs: int = 0
    #: local (a process pool) or dask (a Dask cluster; see docs/scaling.md)
    executor: str = "local"
    #: with executor dask: a scheduler address (tcp://HOST:8786); null starts a local cluster
    scheduler: Any = None


@dataclass
class FuseConfig:
    label: Any = None
    seed: int = 0
    #: concat, product, sum or tensor
    method: str = "concat"
    #: common dimension blocks are projected to (product, sum, tensor); null picks a default
    dim: Any = None
    #: fuse only these modalities (column names); empty means all
    modalities: list = field(default_factory=list)


@dataclass
class TrainConfig:
    label: Any = None
    seed: int = 0
    #: a model name (see docs/models.md): logreg, linear_svm, random_forest, hist_gb, mlp,
    #: late_repr, late_decision, gmu, lowrank, attention, tensor_layer, subset; "auto":
    #: chosen with its parameters by validation on the train split (mmcli.models.select)
    model: str = "auto"
    #: model parameters, e.g. {C: 0.5} or {hidden: [256], epochs: 200}
    params: dict = field(default_factory=dict)
    #: auto (a GPU when one exists), cpu or cuda
    device: str = "auto"
    #: cross-validated hyperparameter search, e.g. {method: grid, params: {C: [0.1, 1]}, cv: 5}
    search: dict = field(default_factory=dict)
    #: extra label columns trained with the label, e.g. {price: {kind: regression, weight: 0.5}}
    tasks: dict = field(default_factory=dict)
    #: model auto: {candidates: [logreg, ...], cv: 3, validation: auto|cv|val,
    #: drop_blocks: true, drop_margin: 0.01, jobs: 0} (docs/models.md)
    select: dict = field(default_factory=dict)
    #: model auto: the search's budget in estimated seconds of one core (the same on every
    #: machine; mmcli.models.select.fit_cost); 0: no limit
    time_limit: float = 600.0


@dataclass
class EvalConfig:
    label: Any = None
    #: the splits to evaluate, those present in the data
    splits: list = field(default_factory=lambda: ["train", "val", "test"])
    #: seeds the bootstrap resamples and the robustness noise
    seed: int = 0
    #: bootstrap resamples for the confidence intervals; 0 turns them off
    bootstrap: int = 1000
    #: modality ablation and noise robustness on the test split (docs/evaluation.md)
    robustness: bool = True
    #: noise severities in [0, 1], increasing from 0 (clean)
    noise_levels: list = field(default_factory=lambda: [0.0, 0.25, 0.5, 0.75, 1.0])
    #: noise robustness on at most this many test items (seeded subsample); 0: all
    noise_max_items: int = 2000


@dataclass
class PredictConfig:
    #: when the new manifest has this column, predict also reports accuracy on it
    label: Any = None
    jobs: int = 0
    #: local (a process pool) or dask (a Dask cluster; see docs/scaling.md)
    executor: str = "local"
    #: with executor dask: a scheduler address (tcp://HOST:8786); null starts a local cluster
    scheduler: Any = None
    max_failed_fraction: float = 1.0
    #: when non-empty, media are read only from inside these folders (see docs/failures.md)
    media_roots: list = field(default_factory=list)
    #: csv (predictions.csv) or parquet (predictions.parquet too, with pyarrow)
    format: str = "csv"


def _default_extractors(kind: str) -> list[str]:
    from mmcli.kinds import get_kind

    return list(get_kind(kind).default_extractors)


C = TypeVar("C")


def read_config_file(path: Path | None) -> dict:
    """Read and check the top level of a YAML config file; None gives an empty config."""
    if path is None:
        return {}
    import yaml

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"config file {path} does not exist", "pass an existing YAML file to -c")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(f"config file {path} is not valid YAML: {first}", "fix the YAML") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"config file {path} must hold a mapping of sections", "see configs/")
    for key in data:
        check_known(key, TOP_LEVEL, f"config file {path}")
    return data


def build(cls: type[C], file_config: dict, stage: str, overrides: dict | None = None) -> C:
    """Resolve a stage config: defaults < file (top level label/seed, then section) < flags."""
    names = {f.name for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key in ("label", "seed"):
        if key in names and key in file_config:
            values[key] = file_config[key]
    section = file_config.get(stage) or {}
    if not isinstance(section, dict):
        raise UsageError(f"config section {stage!r} must be a mapping", "see configs/")
    for key, value in section.items():
        check_known(key, sorted(names), f"config section {stage!r}")
        values[key] = value
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = value
    config = cls(**values)
    check_types(config, stage)
    return config


def to_dict(config) -> dict:
    return dataclasses.asdict(config)


def from_dict(cls: type[C], data: dict) -> C:
    return cls(**{k: v for k, v in data.items() if k in {f.name for f in dataclasses.fields(cls)}})


def check_known(key: str, known, where: str) -> None:
    """Refuse a key not in ``known`` (UsageError with "did you mean" for a typo)."""
    if key in known:
        return
    close = difflib.get_close_matches(str(key), list(known), n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
    raise UsageError(f"unknown key {key!r} in {where}", hint)


def check_types(config, stage: str) -> None:
    """Refuse a field of the dataclass ``config`` whose value is not of its default's type
    (config sections, model, extractor and augmentation parameters)."""
    default = type(config)()
    for f in dataclasses.fields(config):
        value, expected = getattr(config, f.name), getattr(default, f.name)
        if expected is None:
            continue
        ok_types: tuple = (type(expected),)
        if isinstance(expected, float):
            ok_types = (int, float)
        if isinstance(expected, bool):
            ok_types = (bool,)
        elif isinstance(expected, int):
            ok_types = (int,)
        if not isinstance(value, ok_types) or (isinstance(value, bool) and bool not in ok_types):
            raise UsageError(
                f"the {f.name!r} parameter of {stage} must be of type "
                f"{type(expected).__name__}; got {value!r} instead",
                f"fix '{f.name}' in the config file or flag",
            )
