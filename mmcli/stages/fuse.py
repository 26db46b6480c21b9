"""fuse: combine the modality feature blocks of an extract directory into one matrix.

Output directory::

    meta.json
    items.jsonl          extract's items, copied (id, row, split, label, labels, group)
    fused.npy            (n_items, dim) float32
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
    method.fit([np.asarray(b[train]) for b in blocks],
               [(st or {}).get("layout") for st in structures])

    with artifacts.StageWriter(out, "fuse", (feat.path,)) as writer:
        with progress("fuse", len(items)) as bar, \
                artifacts.NpyAppender(writer.path / "fused.npy", np.float32,
                                      (_out_dim(method, blocks, train),)) as appender:
            for a in range(0, len(items), CHUNK):
                appender.append(method.transform([np.asarray(b[a:a + CHUNK]) for b in blocks]))
                bar.advance(min(CHUNK, len(items) - a))
        dim = appender.trailing[0]
        artifacts.write_jsonl(writer.path / "items.jsonl", items)
        fusion = {"method": config.method, "modalities": columns, "dim": dim}
        ranges = block_ranges(method, columns, blocks, structures)
        if ranges is not None:
            fusion["blocks"] = ranges
        artifacts.write_json(writer.path / "fusion.json", fusion)
        carry_state(feat.path / "state", writer.path / "state", columns)
        params, arrays = method.get_state()
        if ranges is not None:
            params["blocks"] = ranges
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
    return method.transform([np.asarray(b[train[:1]]) for b in blocks]).shape[1]


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
    return FUSIONS.get(params["method"]).from_state(params, arrays), params["modalities"]
