"""fuse: combine the modality feature blocks of an extract directory into one matrix.

Output directory::

    meta.json
    items.jsonl          extract's items, copied (id, row, split, label, labels, group,
                         missing)
    fused.npy            (n_items, dim) float32; an absent modality's block is filled with
                         its train mean over present rows (normalised: zero) and, when train
                         had a missing cell, one 0/1 missing indicator per modality follows
                         the blocks (fusion.json "missing_indicators": start, columns)
    fusion.json          method, modalities used, output dimension and, for concat, "blocks":
                         [{column, start, stop}] (each modality's column range in fused.npy),
                         with "layout", "shape" (and "vocab") when the column's one extractor
                         gives a structured row (pixels, frames, tokens; see
                         Extractor.structure) that the models' encoders can use
    state/               preprocess.json, extract/ and fuse/ for the modalities used
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmcli import artifacts, storage
from mmcli.config import FuseConfig, to_dict
from mmcli.errors import ArtifactError, UsageError
from mmcli.missing import INDICATOR_KEY, presence
from mmcli.progress import ProgressFactory, silent
from mmcli.stages.extract import load_decisions, load_plan, save_plan
from mmcli.stages.preprocess import PreprocessState, check_label

CHUNK = 4096


@storage.staged("feat_dir")
def fuse(feat_dir: Path, out: Path, config: FuseConfig | None = None,
         progress: ProgressFactory = silent) -> dict:
    """Fit the fusion method on train rows and write the fused matrix for every item."""
    from mmcli.fusion import FUSIONS

    config = config or FuseConfig()
    feat = artifacts.open_stage(feat_dir, "extract", "mmcli fuse")
    check_label(PreprocessState.load(feat.path / "state"), config.label, feat.path)
    blocks_info = artifacts.read_json(feat.path / "blocks.json")
    available = [b["column"] for b in blocks_info]
    columns = list(config.modalities) or available
    for col in columns:
        if col not in available:
            raise UsageError(f"fuse modality {col!r} is not in {feat.path}",
                             f"modalities there: {', '.join(available)}")
    items = artifacts.read_jsonl(feat.path / "items.jsonl")
    blocks = [artifacts.load_npy(feat.path / "features" / f"{c}.npy") for c in columns]
    train = np.array([k for k, it in enumerate(items) if it["split"] == "train"], dtype=int)
    if train.size == 0:
        raise ArtifactError(f"{feat.path} has no train items",
                            "re-run preprocess with a train split")

    method = FUSIONS.get(config.method, where="--method")(config.dim, config.seed)
    structures = [block_structure(blocks_info, c) for c in columns]
    mask = presence(items, columns)
    fit_fusion(method, [np.asarray(b[train]) for b in blocks], mask[train],
               [(st or {}).get("layout") for st in structures])

    with artifacts.StageWriter(out, "fuse", (feat.path,)) as writer:
        with progress("fuse", len(items)) as bar, \
                artifacts.NpyAppender(writer.path / "fused.npy", np.float32,
                                      (_out_dim(method, blocks, train),)) as appender:
            for a in range(0, len(items), CHUNK):
                appender.append(fuse_rows(method, [np.asarray(b[a:a + CHUNK]) for b in blocks],
                                          mask[a:a + CHUNK]))
                bar.advance(min(CHUNK, len(items) - a))
        dim = appender.trailing[0]
        artifacts.write_jsonl(writer.path / "items.jsonl", items)
        fusion = {"method": config.method, "modalities": columns, "dim": dim}
        ranges = block_ranges(method, columns, blocks, structures)
        if ranges is not None:
            fusion["blocks"] = ranges
        if method.missing_indicators_:
            fusion[INDICATOR_KEY] = {"start": dim - len(columns), "columns": columns}
        artifacts.write_json(writer.path / "fusion.json", fusion)
        carry_state(feat.path / "state", writer.path / "state", columns)
        params, arrays = method.get_state()
        if ranges is not None:
            params["blocks"] = ranges
        if method.missing_indicators_:
            params[INDICATOR_KEY] = True
        artifacts.save_state(writer.path / "state" / "fuse", "fuse",
                             {**params, "modalities": columns}, arrays)
        summary = {"items": len(items), "method": config.method, "modalities": columns,
                   "dim": dim}
        writer.commit(to_dict(config), config.seed, {str(feat.path): feat.meta_hash()}, summary)
    return summary


def block_ranges(method, columns: list[str], blocks,
                 structures: list[dict | None] | None = None) -> list[dict] | None:
    """Column range of each modality in the fused matrix (methods that keep the blocks side
    by side: concat), for models that learn the fusion themselves, with the block's structure
    (layout, shape) when it has one."""
    if not method.keeps_blocks:
        return None
    out, start = [], 0
    for k, (col, b) in enumerate(zip(columns, blocks)):
        out.append({"column": col, "start": start, "stop": start + int(b.shape[1]),
                    **((structures or [None] * len(columns))[k] or {})})
        start += int(b.shape[1])
    return out


def block_structure(blocks_info: list[dict], column: str) -> dict | None:
    """The row structure of a column's block: that of its extractor when it has exactly one
    with a structure (a block mixing extractors is a plain vector)."""
    info = next(b for b in blocks_info if b["column"] == column)
    extractors = info.get("extractors") or []
    if len(extractors) == 1 and extractors[0].get("structure"):
        return dict(extractors[0]["structure"])
    return None


def _out_dim(method, blocks, train) -> int:
    return fuse_rows(method, [np.asarray(b[train[:1]]) for b in blocks], None).shape[1]


def fit_fusion(method, train_blocks: list[np.ndarray], mask: np.ndarray,
               layouts: list[str | None]) -> None:
    """Fit ``method`` on the train blocks (``layouts``: each block's layout), an absent block
    (``mask`` False) first filled with the mean of the block's present train rows (a block
    the method leaves unnormalised, token ids: padding), so the fitted normalisation is that
    of the present rows; train with a missing cell turns on the missing indicators (see
    :func:`fuse_rows`)."""
    filled = []
    for k, b in enumerate(train_blocks):
        absent = ~mask[:, k]
        if absent.any():
            b = b.copy()
            raw = layouts[k] is not None and layouts[k] in method.raw_layouts
            b[absent] = 0.0 if raw else b[~absent].mean(0, dtype=np.float64)
        filled.append(b)
    method.fit(filled, layouts)
    method.missing_indicators_ = bool(not mask.all())


def fuse_rows(method, blocks: list[np.ndarray], mask: np.ndarray | None) -> np.ndarray:
    """The fused rows of ``blocks`` (one chunk of rows) under the fitted ``method``: absent
    blocks (``mask`` False; None: all present) are replaced by the block's train mean, which
    the normalisation maps to zero (token blocks: padding), and the missing indicators
    (1.0: absent) are appended when the fit turned them on."""
    n = len(blocks[0]) if blocks else 0
    mask = np.ones((n, len(blocks)), dtype=bool) if mask is None else mask
    if not mask.all():
        blocks = [b if mask[:, k].all() else
                  np.where(mask[:, [k]], b, method.norm_[k][0].astype(np.float32))
                  for k, b in enumerate(blocks)]
    fused = method.transform(blocks)
    if getattr(method, "missing_indicators_", False):
        fused = np.hstack([fused, (~mask).astype(np.float32)])
    return fused


def carry_state(src: Path, dst: Path, columns: list[str]) -> None:
    """Copy the preprocess and extract state, keeping only ``columns``, so that predict needs
    only the modalities that the model uses."""
    pstate = PreprocessState.load(src)
    pstate.columns = {c: k for c, k in pstate.columns.items() if c in columns}
    pstate.numeric = {c: v for c, v in pstate.numeric.items() if c in columns}
    pstate.save(dst)
    plan = load_plan(src / "extract")
    save_plan({c: plan[c] for c in columns}, pstate.columns, dst / "extract",
              load_decisions(src / "extract"))


def load_fusion(state_dir: Path):
    from mmcli.fusion import FUSIONS

    params, arrays = artifacts.load_state(state_dir / "fuse", "fuse")
    method = FUSIONS.get(params["method"]).from_state(params, arrays)
    method.missing_indicators_ = bool(params.get(INDICATOR_KEY))
    return method, params["modalities"]
