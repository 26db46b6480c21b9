"""extract: per-modality features, fitted on the train split only, applied frozen to the rest.

Output directory::

    meta.json
    items.jsonl             id, row, split, label (labels, group) per item (same order as
                            preprocess)
    blocks.json             one entry per modality column: kind, extractors, dimensions (and
                            each extractor's row ``structure`` when it has one: image, logmel
                            or tokens layout and shape, for the models' encoders), and the
                            fit-time ``decisions`` on conditional extractors (``frames(auto)``)
    features/<col>.npy      (n_items, dim) float32 per modality column
    state/preprocess.json   carried over from preprocess
    state/extract/          the fitted extractors (JSON + npz, no pickle)
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path

import numpy as np

from mmcli import artifacts, storage
from mmcli.config import RUNTIME_KEYS, ExtractConfig, to_dict
from mmcli.dataset import PreprocessedData
from mmcli.errors import ArtifactError, DataError, UsageError
from mmcli.missing import FEATURE_FILL
from mmcli.parallel import (
    Runtime,
    chunks,
    connect,
    ordered_map,
    runtime_of,
    start_workers,
    worker_state,
)
from mmcli.progress import ProgressFactory, silent
from mmcli.stages.preprocess import PreprocessState, check_label

#: items per task; tasks go chunk by chunk, the columns in turn, so that costly (audio)
#: chunks spread over the run instead of keeping one worker busy at its end
CHUNK = 128
#: the keys of preprocess's items that later stages read (fuse copies them, train reads them:
#: ``labels`` for train.tasks, ``group`` for group-aware model selection, ``missing`` for the
#: presence mask)
ITEM_KEYS = ("id", "row", "split", "label", "labels", "group", "missing")
log = logging.getLogger(__name__)
Plan = dict[str, list]  # column -> fitted extractors
#: column -> [{name, applied, reason}] for the config's conditional extractors (``frames(auto)``)
Decisions = dict[str, list[dict]]


@storage.staged("pre_dir")
def extract(pre_dir: Path, out: Path, config: ExtractConfig | None = None,
            progress: ProgressFactory = silent) -> dict:
    """Fit the configured extractors on train items and write every item's features."""
    config = config or ExtractConfig()
    _check_lists(config)
    connect(runtime_of(config))  # an unknown executor or scheduler fails now
    # workers start now, importing what the extractors need, while this process checks the
    # input's hashes and fits
    start_workers(runtime_of(config), _worker_modules(pre_dir, config))
    # its files are checked in the writer: a killed run's rerun finds that run's checks there
    pre = artifacts.open_stage(pre_dir, "preprocess", "mmcli extract", verify=False)
    inputs = {str(pre.path): pre.meta_hash()}
    key = artifacts.fingerprint("extract", to_dict(config), inputs)
    with artifacts.StageWriter(out, "extract", (pre.path,), resume_key=key) as writer:
        journal = writer.journal()
        _verify_input(pre, writer.path / artifacts.HashCache.NAME)
        pstate = PreprocessState.load(pre.path / "state")
        check_label(pstate, config.label, pre.path)
        data = PreprocessedData(pre.path, pstate.columns, pstate.sample_rate)
        train = np.array([k for k, it in enumerate(data.items) if it["split"] == "train"],
                         dtype=int)
        if train.size == 0:
            raise ArtifactError(f"{pre.path} has no train items",
                                "re-run preprocess with a train split")

        plan, conditional = build_plan(config, pstate.columns)  # checks the extractors' params
        keys = item_keys(pre.path, data.items, pstate.columns)
        fit_signature = _fit_signature(config, pstate, [(data.items[k]["id"], keys[k])
                                                        for k in train])
        previous = _previous(Path(out), fit_signature)
        state_dir = writer.path / "state"
        # the fit is saved before the chunks run, so a killed run's rerun loads it
        resumed = _saved_fit(state_dir, fit_signature)
        if resumed is None:
            plan, decisions = _fit_or_reuse(plan, conditional, pstate, data, train, Path(out),
                                            previous, progress)
            _save_fit(state_dir, plan, pstate, decisions, fit_signature)
        else:
            plan, decisions = resumed
        blocks, work = transform(pre.path, pstate, plan, writer.path / "features",
                                 runtime_of(config), progress, journal=journal,
                                 reuse=_reused_rows(keys, previous),
                                 old_features=Path(out) / "features")
        for block in blocks:
            if decisions.get(block["column"]):
                block["decisions"] = decisions[block["column"]]
        journal.close()
        artifacts.write_jsonl(writer.path / "items.jsonl",
                              [{**{k: it[k] for k in ITEM_KEYS
                                   if k in it}, "key": keys[n]}
                               for n, it in enumerate(data.items)])
        artifacts.write_json(writer.path / "blocks.json", blocks)
        shutil.copy2(pre.path / "state" / "preprocess.json", state_dir / "preprocess.json")
        summary = _summary(len(data), blocks)
        writer.commit(to_dict(config), config.seed, inputs, summary)
    # how much was reused is reported, not recorded: the output is the same either way
    return {**summary, **work, "refit": previous is None, "fit_resumed": resumed is not None}


def _verify_input(pre: artifacts.StageDir, checked: Path) -> None:
    """Check the input's files against its ``meta.json`` (mmcli.artifacts.verify_stage),
    skipping those this process (``mmcli run``) or the killed run whose temporary directory
    this one adopted has hashed already, unchanged since (``checked`` keeps that run's)."""
    with artifacts.hash_cache() as hashes:
        hashes.load(checked)
        artifacts.verify_stage(pre)
        hashes.save(checked)


def _save_fit(state_dir: Path, plan: Plan, pstate: PreprocessState, decisions: Decisions,
              signature: str) -> None:
    """The fitted extractors and their decisions, then ``fit.json`` (written last: a run
    killed while saving leaves no fit.json, and its rerun fits again)."""
    save_plan(plan, pstate.columns, state_dir / "extract", decisions)
    artifacts.write_json(state_dir / "fit.json", {"signature": signature})


def _saved_fit(state_dir: Path, signature: str) -> tuple[Plan, Decisions] | None:
    """The fit a killed run of the same output saved in the temporary directory this run
    adopted (the same train items and config: ``signature``), else None."""
    if not (state_dir / "fit.json").is_file():
        return None
    try:
        if artifacts.read_json(state_dir / "fit.json").get("signature") != signature:
            return None
        return load_plan(state_dir / "extract"), load_decisions(state_dir / "extract")
    except (*artifacts.NOT_REUSABLE, AttributeError):  # fit again
        return None


def _fit_or_reuse(plan: dict, conditional, pstate: PreprocessState, data: PreprocessedData,
                  train: np.ndarray, out: Path, previous: list[str] | None,
                  progress: ProgressFactory) -> tuple[dict, Decisions]:
    """(fitted plan, conditional decisions). With ``previous`` (the train split and config
    unchanged) the earlier output's fitted state is loaded; else ``plan`` (from
    :func:`build_plan`) is fitted on the train items' present cells (mmcli.missing)."""
    if previous is not None:
        state = out / "state" / "extract"
        return load_plan(state), load_decisions(state)

    def train_column(col: str):
        column = data.column(col, present_rows(data.items, train, col))
        check_train_column(col, pstate.columns[col], column)
        return column

    with progress("extract: fit", sum(len(v) for v in plan.values())) as bar:
        return fit_plan(plan, conditional, train_column, bar.advance)


def _reused_rows(keys: list[str], previous: list[str] | None) -> dict[int, int]:
    """{item: row of the previous output to copy} for the items whose key (their inputs) is
    among ``previous``'s (an output fitted the same way); {} without one."""
    if previous is None:
        return {}
    old_rows = {key: k for k, key in enumerate(previous)}
    return {k: old_rows[key] for k, key in enumerate(keys) if key in old_rows}


def _summary(n_items: int, blocks: list[dict]) -> dict:
    """The stage summary: items, block widths, and per column the notes of its conditional
    decisions and extractors (when any)."""
    summary = {"items": n_items, "blocks": {b["column"]: b["dim"] for b in blocks}}
    notes = {b["column"]: [*(f"{d['name']}(auto) {'added' if d['applied'] else 'left out'}: "
                             f"{d['reason']}" for d in b.get("decisions", [])),
                           *(f"{e['name']}: {e['note']}" for e in b["extractors"]
                             if e.get("note"))]
             for b in blocks}
    notes = {c: n for c, n in notes.items() if n}
    if notes:
        summary["notes"] = notes
    return summary


def _check_lists(config: ExtractConfig) -> None:
    """Check every kind's extractor list and the params; warn of params no list uses."""
    from mmcli.extractors import EXTRACTORS, check_params
    from mmcli.kinds import kind_names

    for name in check_params(config.params,
                             {kind: getattr(config, kind) for kind in kind_names()}):
        kind = EXTRACTORS.tags(name)["kind"]
        log.warning("extract.params.%s is not used: no extract list names %r (add it to "
                    "extract.%s, or remove its parameters)", name, name, kind)


def build_plan(config: ExtractConfig, columns: dict[str, str]
               ) -> tuple[Plan, dict[str, set[int]]]:
    """The configured (unfitted) extractors of every column, and per column the positions of
    its conditional ones (``name(auto)``), whose ``applies_to`` decides at fit."""
    from mmcli.extractors.base import config_name
    from mmcli.kinds import get_kind

    if config.device not in ("auto", "cpu", "cuda"):
        raise UsageError(f"config 'extract.device' must be auto, cpu or cuda; got "
                         f"{config.device!r} instead", "pass --device auto, cpu or cuda")
    plan: Plan = {}
    conditional: dict[str, set[int]] = {}
    for col, kind in columns.items():
        names = getattr(config, kind)
        if not names:
            raise UsageError(f"config 'extract.{kind}' is empty but column {col!r} is {kind}",
                             f"name at least one {kind} extractor, or ignore the column")
        plan[col] = []
        for entry in names:
            name, optional = config_name(entry)
            params = dict(config.params.get(name) or {})
            extractor = get_kind(kind).build_extractor(name, params)
            fields = {f.name for f in dataclasses.fields(extractor.Params)}
            if "seed" in fields and "seed" not in params:
                extractor.params.seed = config.seed
            if "device" in fields and extractor.params.device == "auto":  # unless pinned
                extractor.params.device = config.device
            if optional:
                conditional.setdefault(col, set()).add(len(plan[col]))
            plan[col].append(extractor)
    return plan, conditional


def present_rows(items: list[dict], rows: np.ndarray, col: str) -> np.ndarray:
    """The positions among ``rows`` whose item has column ``col`` (not missing)."""
    from mmcli.missing import missing_of

    present = rows[[col not in missing_of(items[k]) for k in rows]] if len(rows) else rows
    if len(rows) and not len(present):
        raise DataError(f"column {col!r} is missing in every one of the {len(rows)} train items",
                        f"fix the column in the manifest, or drop it with '{col}: ignore' "
                        "under preprocess.columns in the config")
    return present


def check_train_column(col: str, kind: str, train_data) -> None:
    """Refuse a column its extractors would learn nothing from (its kind's
    :meth:`~mmcli.kinds.base.Kind.check_train`, e.g. a text column without words)."""
    from mmcli.kinds import get_kind

    get_kind(kind).check_train(col, train_data)


def fit_plan(plan: Plan, conditional: dict[str, set[int]], train_column, advance=None
             ) -> tuple[Plan, Decisions]:
    """Fit every column's extractors on its train data (``train_column(col)``, read once per
    column and only when an extractor needs it), first dropping each conditional extractor
    whose ``applies_to`` turns it down. Returns the fitted plan and those decisions."""
    fitted: Plan = {}
    decisions: Decisions = {}
    for col, extractors in plan.items():
        train_data = None
        fitted[col] = []
        for k, extractor in enumerate(extractors):
            optional = k in conditional.get(col, ())
            if (extractor.needs_fit or optional) and train_data is None:
                train_data = train_column(col)
            if optional:
                applied, reason = extractor.applies_to(train_data)
                decisions.setdefault(col, []).append(
                    {"name": extractor.name, "applied": bool(applied), "reason": reason})
                if not applied:
                    if advance:
                        advance()
                    continue
            extractor.fit(train_data if extractor.needs_fit else None)
            fitted[col].append(extractor)
            if advance:
                advance()
        if not fitted[col]:
            names = ", ".join(e.name for e in extractors)
            raise UsageError(f"no extractor of column {col!r} applies to its train data "
                             f"({names} are all conditional and turned down)",
                             "name at least one extractor without '(auto)'")
    return fitted, decisions


def item_keys(pre_path: Path, items: list[dict], columns: dict[str, str]) -> list[str]:
    """Per item, a digest of everything its features depend on in the preprocess output:
    media content hashes, normalised text and categories, scaled numbers."""
    import hashlib
    import json

    from mmcli.kinds import get_kind

    numeric = {c: artifacts.load_npy(pre_path / "data" / f"{c}.npy", mmap=False)
               for c, k in columns.items() if get_kind(k).stored == "numbers"}
    out = []
    for n, it in enumerate(items):
        parts = [it.get("hashes", {}), it.get("values", {}),
                 {c: repr(float(v[n])) for c, v in numeric.items()}]
        blob = json.dumps(parts + ([it["missing"]] if it.get("missing") else []),
                          sort_keys=True, ensure_ascii=False)
        out.append(hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32])
    return out


def _worker_modules(pre_dir: Path, config: ExtractConfig) -> tuple[str, ...]:
    """The heavy modules the configured extractors of the input's column kinds import in the
    workers (read before the input is checked: anything wrong gives none; open_stage then
    says what is wrong)."""
    from mmcli.extractors import EXTRACTORS
    from mmcli.extractors.base import config_name

    try:
        kinds = set(PreprocessState.load(Path(pre_dir) / "state").columns.values())
        classes = [EXTRACTORS.get(config_name(name)[0]) for kind in sorted(kinds)
                   for name in (getattr(config, kind, None) or [])]
    except Exception:  # noqa: BLE001 - only an optimisation
        return ()
    return tuple(sorted({m for c in classes if c.parallel for m in c.worker_modules}))


def _fit_signature(config: ExtractConfig, pstate: PreprocessState, train: list) -> str:
    import hashlib
    import json

    settings = {k: v for k, v in to_dict(config).items() if k not in RUNTIME_KEYS}
    blob = json.dumps([settings, pstate.record(), train], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _previous(out: Path, signature: str) -> list[str] | None:
    """The item keys of an intact earlier output at ``out`` fitted on the same train items
    with the same config (so its fitted state and feature rows can be reused), else None."""
    if not (out / artifacts.META).is_file():
        return None
    try:
        artifacts.open_stage(out, "extract", "mmcli extract")
        fit = artifacts.read_json(out / "state" / "fit.json")
        if not isinstance(fit, dict) or fit.get("signature") != signature:
            return None
        items = artifacts.read_jsonl(out / "items.jsonl")
    except artifacts.NOT_REUSABLE:  # recompute everything
        return None
    return [it.get("key") for it in items]


def transform(pre_path: Path, pstate: PreprocessState, plan: Plan, features_dir: Path,
              jobs: int | Runtime, progress: ProgressFactory = silent,
              journal: artifacts.Journal | None = None, reuse: dict[int, int] | None = None,
              old_features: Path | None = None) -> tuple[list[dict], dict]:
    """Write ``features/<col>.npy`` for every column of ``plan`` from a preprocessed dir.

    ``reuse`` maps item positions to rows of ``old_features`` (an earlier output fitted the
    same way) that are copied instead of computed. With ``journal`` every completed chunk is
    checkpointed and the chunks an interrupted run completed are skipped. Returns the block
    descriptions and the work done (items computed and reused, chunks resumed).
    """
    n, absent = _absent_cells(pre_path, plan)
    reuse = reuse or {}
    done = journal.records if journal is not None else []
    appenders = {col: artifacts.NpyAppender(
        features_dir / f"{col}.npy", np.float32, (sum(e.dim_ for e in plan[col]),),
        resume_rows=done[-1]["rows"][col] if done else None) for col in plan}
    old = {col: artifacts.load_npy(old_features / f"{col}.npy") for col in plan} if reuse else {}
    # columns with an extractor that must stay in this process (a model on a GPU) run here
    local = [col for col in plan if not all(e.parallel for e in plan[col])]
    groups = [([c for c in plan if c not in local], jobs), (local, 1)]
    every = [(col, a, b) for cols, _ in groups for a, b in chunks(n, CHUNK) for col in cols]
    work = {"computed": sum(r["computed"] for r in done), "reused": sum(r["reused"] for r in done),
            "resumed_chunks": len(done)}
    with progress("extract", n * len(plan)) as bar:
        bar.advance(sum(b - a for _, a, b in every[:len(done)]))
        position = 0
        for cols, workers in groups:
            tasks = [(col, a, b, [k for k in range(a, b) if k not in reuse and k not in
                                  absent[col]]) for a, b in chunks(n, CHUNK) for col in cols]
            skip = max(0, min(len(tasks), len(done) - position))
            position += len(tasks)
            init = (str(pre_path), pstate.columns, pstate.sample_rate, plan)
            results = ordered_map(_transform_chunk, tasks[skip:], workers, _init_worker, init,
                                  ship=_shipper(pre_path, pstate))
            for (col, a, b, compute), block in zip(tasks[skip:], results):
                rows = iter(block)
                fill = np.full(appenders[col].trailing, FEATURE_FILL, dtype=np.float32)
                full = np.stack([fill if k in absent[col] else next(rows) if k not in reuse
                                 else old[col][reuse[k]] for k in range(a, b)]) if b > a else block
                appenders[col].append(full)
                work["computed"] += len(compute)
                work["reused"] += (b - a) - len(compute)
                if journal is not None:
                    appenders[col].flush()
                    journal.append({"rows": {c: ap.rows for c, ap in appenders.items()},
                                    "computed": len(compute), "reused": (b - a) - len(compute)})
                bar.advance(b - a)
    for appender in appenders.values():
        appender.close()
    blocks = [
        {"column": col, "kind": pstate.columns[col], "dim": appenders[col].trailing[0],
         "extractors": [{"name": e.name, "dim": e.dim_,
                         **({"structure": e.structure()} if e.structure() else {}),
                         **({"note": e.fit_note()} if e.fit_note() else {})}
                        for e in plan[col]]}
        for col in plan
    ]
    return blocks, work


def _absent_cells(pre_path: Path, plan: Plan) -> tuple[int, dict[str, set[int]]]:
    """The number of items, and per column the positions of its absent cells: they are not
    computed, their rows get FEATURE_FILL (mmcli.missing)."""
    from mmcli.missing import missing_of

    items = artifacts.read_jsonl(pre_path / "items.jsonl")
    return len(items), {col: {k for k, it in enumerate(items) if col in missing_of(it)}
                        for col in plan}


def save_plan(plan: Plan, columns: dict, directory: Path,
              decisions: Decisions | None = None) -> None:
    index = {}
    for col, extractors in plan.items():
        index[col] = []
        for k, extractor in enumerate(extractors):
            stem = f"{col}__{k}__{extractor.name}"
            params, arrays = extractor.get_state()
            artifacts.save_state(directory, stem, params, arrays)
            for suffix, source in extractor.state_files().items():
                target = directory / f"{stem}.{suffix}"
                if Path(source).resolve() != target.resolve():
                    shutil.copyfile(source, target)
            index[col].append(stem)
    record = {"columns": columns, "extractors": index}
    decisions = {c: d for c, d in (decisions or {}).items() if c in plan and d}
    if decisions:
        record["decisions"] = decisions
    artifacts.write_json(directory / "extract.json", record, sort_keys=False)


def load_decisions(directory: Path) -> Decisions:
    """The fit-time decisions on conditional extractors saved with a plan ({} when none)."""
    return dict(artifacts.read_json(directory / "extract.json").get("decisions") or {})


def load_plan(directory: Path) -> Plan:
    from mmcli.kinds import get_kind

    index = artifacts.read_json(directory / "extract.json")
    plan: Plan = {}
    for col, stems in index["extractors"].items():
        kind = get_kind(index["columns"][col])
        plan[col] = []
        for stem in stems:
            params, arrays = artifacts.load_state(directory, stem)
            files = {suffix: directory / f"{stem}.{suffix}" for suffix in params.get("files", [])}
            plan[col].append(kind.load_extractor(params, arrays, files))
    return plan


# --- worker side -------------------------------------------------------------------------

#: the worker's plan and its (lazily opened) input; emptied after an in-process map
_WORKER: dict = worker_state()


def _init_worker(pre_path: str, columns: dict, sample_rate: int, plan: Plan) -> None:
    # the data are opened on first use: tasks that carry their data (a remote Dask cluster,
    # whose workers may not see this machine's files) never open them
    _WORKER["data"] = None
    _WORKER["open"] = (Path(pre_path), columns, sample_rate)
    _WORKER["plan"] = plan


def _data() -> PreprocessedData:
    if _WORKER["data"] is None:
        _WORKER["data"] = PreprocessedData(*_WORKER["open"])
    return _WORKER["data"]


def _shipper(pre_path: Path, pstate: PreprocessState):
    """For executors whose workers may not see this machine's files (Dask): a task that
    carries its chunk's preprocessed data, read here."""
    data: list = []

    def ship(task: tuple) -> tuple:
        col, a, b, compute = task
        if not data:
            data.append(PreprocessedData(pre_path, pstate.columns, pstate.sample_rate))
        return (*task, data[0].column(col, _index(a, b, compute)) if compute else None)

    return ship


def _index(a: int, b: int, compute: list[int]):
    return slice(a, b) if len(compute) == b - a else np.asarray(compute)


def _transform_chunk(task: tuple) -> np.ndarray:
    """Features of the items ``compute`` (positions in ``a..b``) of one column; the data are
    read here unless the task carries them (see :func:`_shipper`)."""
    col, a, b, compute = task[:4]
    extractors = _WORKER["plan"][col]
    if not compute:
        return np.zeros((0, sum(e.dim_ for e in extractors)), dtype=np.float32)
    data = task[4] if len(task) > 4 else _data().column(col, _index(a, b, compute))
    return np.hstack([e.transform(data) for e in extractors])
