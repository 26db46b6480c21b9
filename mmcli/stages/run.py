"""run: the whole chain from one pipeline file, skipping stages that are up to date.

A pipeline file is a config file (see mmcli.config) with a ``pipeline`` section::

    pipeline:
      manifest: sample_data/manifest.csv    # paths relative to the current directory
      workdir: runs/pipeline
      predict: sample_data/unlabeled.csv    # optional: also predict this manifest
    fuse: {method: concat}

Stages write ``WORKDIR/{pre,feat,fused,model,eval,pred}``. A stage is skipped when its output
exists, is intact, and has the fingerprint (stage, resolved config, input hashes, mmcli
version; see :func:`mmcli.artifacts.fingerprint`) that running it now would give.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mmcli import artifacts, storage
from mmcli.config import (
    RUNTIME_KEYS,
    EvalConfig,
    ExtractConfig,
    FuseConfig,
    PredictConfig,
    PreprocessConfig,
    TrainConfig,
    build,
    read_config_file,
    to_dict,
)
from mmcli.errors import MmcliError, UsageError
from mmcli.progress import ProgressFactory, silent

DIRS = {"preprocess": "pre", "extract": "feat", "fuse": "fused", "train": "model",
        "eval": "eval", "predict": "pred"}


@dataclass
class StageRun:
    stage: str
    out: Path
    action: str  # "ran", "skipped", "would run"
    reason: str
    seconds: float = 0.0
    summary: dict = field(default_factory=dict)


def run_pipeline(path: Path, force: bool = False, dry_run: bool = False,
                 progress: ProgressFactory = silent,
                 on_stage: Callable[[StageRun], None] | None = None) -> list[StageRun]:
    """Run (or, with ``dry_run``, plan) every stage of the pipeline file ``path``."""
    # one HashCache for the chain: a stage's input is the output the stage before it has just
    # written and hashed, and is not read again to check it (artifacts stay the same)
    with artifacts.hash_cache():
        return _run_pipeline(path, force, dry_run, progress, on_stage)


def _run_pipeline(path: Path, force: bool, dry_run: bool, progress: ProgressFactory,
                  on_stage: Callable[[StageRun], None] | None) -> list[StageRun]:
    cfg = read_config_file(Path(path))
    spec = _pipeline_section(cfg, path)
    work = Path(spec["workdir"])
    d = {stage: work / name for stage, name in DIRS.items()}
    configs = {
        "preprocess": build(PreprocessConfig, cfg, "preprocess"),
        "extract": build(ExtractConfig, cfg, "extract"),
        "fuse": build(FuseConfig, cfg, "fuse"),
        "train": build(TrainConfig, cfg, "train"),
        "eval": build(EvalConfig, cfg, "eval"),
        "predict": build(PredictConfig, cfg, "predict"),
    }
    _check_extractors(configs["extract"])  # a misspelled name fails now, not after preprocess
    reports = []
    upstream_changed = False
    for stage, execute, inputs in _steps(spec, d, configs, progress):
        out = d[stage]
        config = to_dict(configs[stage])
        if force:
            reason = "--force"
        elif dry_run and upstream_changed:
            reason = "an earlier stage would run"
        else:
            reason = why_stale(stage, out, config, inputs)
        if reason is None:
            report = StageRun(stage, out, "skipped", "up to date")
        elif dry_run:
            upstream_changed = True
            report = StageRun(stage, out, "would run", reason)
        else:
            if not any(r.action == "ran" for r in reports):  # the first stage to run
                _start_workers(configs)
            t0 = time.perf_counter()
            summary = execute()
            report = StageRun(stage, out, "ran", reason, time.perf_counter() - t0,
                              summary if isinstance(summary, dict) else {})
        reports.append(report)
        if on_stage is not None:
            on_stage(report)
    return reports


def _pipeline_section(cfg: dict, path: Path) -> dict:
    """The checked ``pipeline`` section of the pipeline file ``path``."""
    spec = cfg.get("pipeline")
    if not isinstance(spec, dict) or "manifest" not in spec or "workdir" not in spec:
        raise UsageError(f"pipeline file {path} needs a 'pipeline' section with 'manifest' "
                         "and 'workdir'", "see configs/pipeline.yaml")
    unknown = set(spec) - {"manifest", "workdir", "predict"}
    if unknown:
        raise UsageError(f"unknown key {sorted(unknown)[0]!r} in the pipeline section of {path}",
                         "use manifest, workdir and predict")
    if storage.is_url(str(spec["workdir"])):
        raise UsageError(f"the pipeline workdir of {path} is a URL ({spec['workdir']}); mmcli "
                         "run checks and reuses its stage directories in place",
                         "use a local workdir (sync it to the bucket afterwards), or run the "
                         "stages one by one with URL directories")
    return spec


def _steps(spec: dict, d: dict[str, Path], configs: dict, progress: ProgressFactory
           ) -> list[tuple[str, Callable[[], dict], Callable[[], dict]]]:
    """(stage, run it, its input record now) per stage of the pipeline, in order."""
    from mmcli.stages import evaluate, extract, fuse, predict, preprocess, train

    manifest = storage.local(str(spec["manifest"]))  # a path or an fsspec URL
    steps: list[tuple[str, Callable[[], dict], Callable[[], dict]]] = [
        ("preprocess", lambda: preprocess(manifest, d["preprocess"], configs["preprocess"],
                                          progress),
         lambda: _manifest_inputs(manifest, configs["preprocess"])),
        ("extract", lambda: extract(d["preprocess"], d["extract"], configs["extract"], progress),
         lambda: _dir_inputs(d["preprocess"])),
        ("fuse", lambda: fuse(d["extract"], d["fuse"], configs["fuse"], progress),
         lambda: _dir_inputs(d["extract"])),
        ("train", lambda: train(d["fuse"], d["train"], configs["train"], progress),
         lambda: _dir_inputs(d["fuse"])),
        ("eval", lambda: evaluate(d["train"], d["fuse"], d["eval"], configs["eval"], progress),
         lambda: _dir_inputs(d["train"], d["fuse"])),
    ]
    if spec.get("predict"):
        new = storage.local(str(spec["predict"]))
        steps.append(("predict", lambda: predict(d["train"], new, d["predict"],
                                                 configs["predict"], progress),
                      lambda: {**_dir_inputs(d["train"]), **_model_manifest_inputs(d["train"],
                                                                                   new)}))
    return steps


def _check_extractors(config: ExtractConfig) -> None:
    from mmcli.extractors import check_params
    from mmcli.kinds import kind_names

    check_params(config.params, {kind: getattr(config, kind) for kind in kind_names()})


def _start_workers(configs: dict) -> None:
    """Start the worker processes' fork server once for every stage, importing what all of
    them need (the extractors' libraries, the model candidates'): each stage's pool then forks
    workers that have them, instead of each pool's workers importing them again."""
    from mmcli.extractors import EXTRACTORS
    from mmcli.extractors.base import config_name
    from mmcli.kinds import kind_names
    from mmcli.models.select import WORKER_MODULES
    from mmcli.parallel import runtime_of, start_workers

    extract = configs["extract"]
    try:
        classes = [EXTRACTORS.get(config_name(name)[0]) for kind in kind_names()
                   for name in (getattr(extract, kind, None) or [])]
    except MmcliError:  # an unknown name: the extract stage says so
        classes = []
    modules = {m for c in classes if c.parallel for m in c.worker_modules}
    start_workers(runtime_of(configs["preprocess"]), tuple(sorted(modules | set(WORKER_MODULES))))


def why_stale(stage: str, out: Path, config: dict, inputs: Callable[[], dict],
              old: artifacts.StageDir | None = None) -> str | None:
    """None when ``out`` is up to date, else the reason to run the stage.

    ``config`` is the stage's resolved config and ``inputs`` computes its input record as the
    stage would now (:func:`inputs_now` for an existing directory); ``old``, when the caller
    has already opened and verified ``out``, saves hashing it again.
    """
    import mmcli

    if old is None:
        if not (out / artifacts.META).is_file():
            return "no output yet"
        try:
            old = artifacts.open_stage(out, stage, "mmcli run")
        except MmcliError as exc:
            return f"output unusable: {exc.message}"
    try:
        now = inputs()
    except MmcliError as exc:  # an input is missing: the stage will say so when it runs
        return f"input unusable: {exc.message}"
    if old.meta.get("fingerprint") == artifacts.fingerprint(stage, config, now):
        return None
    if old.meta.get("versions", {}).get("mmcli") != mmcli.__version__:
        return "mmcli version changed"
    if {k: v for k, v in old.meta.get("config", {}).items() if k not in RUNTIME_KEYS} != \
            {k: v for k, v in config.items() if k not in RUNTIME_KEYS}:
        return "config changed"
    return "inputs changed"


def inputs_now(stage: str, meta: dict) -> dict[str, str]:
    """The input record an existing stage directory (its ``meta.json`` record ``meta``) would
    get if its stage ran now on the inputs it names, keyed as recorded: previous stage
    directories by the hash of their ``meta.json``, a manifest by its hash and the digest of its
    media (with the stage's own config, or for predict the model's columns), as ``run`` does.

    Paths are recorded as given, relative to where the stage ran: call it from there. Raises
    an :class:`MmcliError` when an input is missing.
    """
    recorded = {k: v for k, v in meta.get("inputs", {}).items() if k != "media"}
    where = {key: storage.local(key) for key in recorded}
    dirs = [key for key in recorded  # stage directories (a Parquet folder is a manifest)
            if not storage.is_url(where[key]) and (Path(where[key]) / artifacts.META).is_file()]
    now = {key: _dir_inputs(Path(where[key]))[str(where[key])] for key in dirs}
    for key in recorded:
        if not storage.is_url(where[key]) and not Path(where[key]).exists():
            raise UsageError(f"{key} is missing", "run the stage that makes it, or restore it")
    for key in set(recorded) - set(dirs):  # a manifest: preprocess and predict have one
        if stage == "predict":
            model = next((Path(where[d]) for d in dirs if (Path(where[d]) / "state").is_dir()),
                         None)
            if model is None:
                raise UsageError(f"the model directory that made {key}'s predictions is "
                                 "missing", "run train")
            digests = _model_manifest_inputs(model, where[key])
        else:
            from mmcli.config import from_dict

            digests = _manifest_inputs(where[key], from_dict(PreprocessConfig,
                                                              meta.get("config", {})))
        now["media"] = digests.pop("media")
        now[key] = next(iter(digests.values()))
    return now


def _dir_inputs(*dirs: Path) -> dict[str, str]:
    out = {}
    for d in dirs:
        meta = d / artifacts.META
        if not meta.is_file():
            raise UsageError(f"{meta} is missing", "run the earlier stages")
        out[str(d)] = artifacts.sha256_file(meta)
    return out


def _manifest_inputs(manifest: Path, config: PreprocessConfig) -> dict[str, str]:
    from mmcli.manifest import read_manifest
    from mmcli.stages.preprocess import feature_columns, manifest_inputs

    m = read_manifest(manifest)
    return manifest_inputs(m, feature_columns(m, config))


def _model_manifest_inputs(model_dir: Path, manifest: Path) -> dict[str, str]:
    from mmcli.manifest import read_manifest
    from mmcli.stages.preprocess import PreprocessState, manifest_inputs

    return manifest_inputs(read_manifest(manifest),
                           PreprocessState.load(model_dir / "state").columns)
