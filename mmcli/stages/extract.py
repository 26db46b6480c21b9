"""extract: per-modality features, fitted on the train split only, applied frozen to the rest.

Output directory::

    meta.json
    items.jsonl             id, row, split, label per item (same order as preprocess)
    blocks.json             one entry per modality column: kind, extractors, dimensions
    features/<col>.npy      (n_items, dim) float32 per modality column
    state/preprocess.json   carried over from preprocess
    state/extract/          the fitted extractors (JSON + npz, no pickle)
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np

from mmcli import artifacts
from mmcli.config import ExtractConfig, to_dict
from mmcli.dataset import PreprocessedData
from mmcli.errors import ArtifactError, UsageError
from mmcli.parallel import chunks, ordered_map
from mmcli.progress import ProgressFactory, silent
from mmcli.stages.preprocess import PreprocessState, check_label

CHUNK = 128
Plan = dict[str, list]  # column -> fitted extractors


def extract(pre_dir: Path, out: Path, config: ExtractConfig | None = None,
            progress: ProgressFactory = silent) -> dict:
    """Fit the configured extractors on train items and write every item's features."""
    from mmcli.extractors import build_extractor

    config = config or ExtractConfig()
    pre = artifacts.open_stage(pre_dir, "preprocess", "mmcli extract")
    pstate = PreprocessState.load(pre.path / "state")
    check_label(pstate, config.label, pre.path)
    data = PreprocessedData(pre.path, pstate.columns, pstate.sample_rate)
    train = np.array([k for k, it in enumerate(data.items) if it["split"] == "train"], dtype=int)
    if train.size == 0:
        raise ArtifactError(f"{pre.path} has no train items",
                            "re-run preprocess with a train split")

    plan: Plan = {}
    for col, kind in pstate.columns.items():
        names = getattr(config, kind)
        if not names:
            raise UsageError(f"config 'extract.{kind}' is empty but column {col!r} is {kind}",
                             f"name at least one {kind} extractor, or ignore the column")
        plan[col] = []
        for name in names:
            params = dict(config.params.get(name) or {})
            extractor = build_extractor(name, kind, params)
            if "seed" in {f.name for f in dataclasses.fields(extractor.Params)} \
                    and "seed" not in params:
                extractor.params.seed = config.seed
            plan[col].append(extractor)

    n_fits = sum(len(v) for v in plan.values())
    with progress("extract: fit", n_fits) as bar:
        for col, extractors in plan.items():
            train_data = None
            for extractor in extractors:
                if extractor.needs_fit and train_data is None:
                    train_data = data.column(col, train)
                extractor.fit(train_data if extractor.needs_fit else None)
                bar.advance()

    with artifacts.StageWriter(out, "extract", (pre.path,)) as writer:
        blocks = transform(pre.path, pstate, plan, writer.path / "features", config.jobs,
                           progress)
        artifacts.write_jsonl(writer.path / "items.jsonl",
                              [{k: it[k] for k in ("id", "row", "split", "label")}
                               for it in data.items])
        artifacts.write_json(writer.path / "blocks.json", blocks)
        state_dir = writer.path / "state"
        state_dir.mkdir()
        shutil.copy2(pre.path / "state" / "preprocess.json", state_dir / "preprocess.json")
        save_plan(plan, pstate.columns, state_dir / "extract")
        summary = {"items": len(data), "blocks": {b["column"]: b["dim"] for b in blocks}}
        writer.commit(to_dict(config), config.seed, {str(pre.path): pre.meta_hash()}, summary)
    return summary


def transform(pre_path: Path, pstate: PreprocessState, plan: Plan, features_dir: Path,
              jobs: int, progress: ProgressFactory = silent) -> list[dict]:
    """Write ``features/<col>.npy`` for every column of ``plan`` from a preprocessed dir."""
    n = len(artifacts.read_jsonl(pre_path / "items.jsonl"))
    tasks = [(col, a, b) for col in plan for a, b in chunks(n, CHUNK)]
    appenders = {col: artifacts.NpyAppender(features_dir / f"{col}.npy", np.float32,
                                            (sum(e.dim_ for e in plan[col]),)) for col in plan}
    with progress("extract", n * len(plan)) as bar:
        for col, block in ordered_map(_transform_chunk, tasks, jobs, _init_worker,
                                      (str(pre_path), pstate.columns, pstate.sample_rate, plan)):
            appenders[col].append(block)
            bar.advance(block.shape[0])
    for appender in appenders.values():
        appender.close()
    return [
        {"column": col, "kind": pstate.columns[col], "dim": appenders[col].trailing[0],
         "extractors": [{"name": e.name, "dim": e.dim_} for e in plan[col]]}
        for col in plan
    ]


def save_plan(plan: Plan, columns: dict, directory: Path) -> None:
    index = {}
    for col, extractors in plan.items():
        index[col] = []
        for k, extractor in enumerate(extractors):
            stem = f"{col}__{k}__{extractor.name}"
            params, arrays = extractor.get_state()
            artifacts.save_state(directory, stem, params, arrays)
            index[col].append(stem)
    artifacts.write_json(directory / "extract.json", {"columns": columns, "extractors": index},
                        sort_keys=False)


def load_plan(directory: Path) -> Plan:
    from mmcli.extractors import EXTRACTORS

    index = artifacts.read_json(directory / "extract.json")
    plan: Plan = {}
    for col, stems in index["extractors"].items():
        plan[col] = []
        for stem in stems:
            params, arrays = artifacts.load_state(directory, stem)
            plan[col].append(EXTRACTORS.get(params["name"]).from_state(params, arrays))
    return plan


# --- worker side -------------------------------------------------------------------------

_WORKER: dict = {}


def _init_worker(pre_path: str, columns: dict, sample_rate: int, plan: Plan) -> None:
    _WORKER["data"] = PreprocessedData(Path(pre_path), columns, sample_rate)
    _WORKER["plan"] = plan


def _transform_chunk(task: tuple[str, int, int]) -> tuple[str, np.ndarray]:
    col, a, b = task
    data = _WORKER["data"].column(col, slice(a, b))
    return col, np.hstack([e.transform(data) for e in _WORKER["plan"][col]])
