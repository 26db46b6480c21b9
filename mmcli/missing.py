"""Missing modalities: what an absent cell becomes at each stage, and the presence mask.

A cell that is empty, names a missing file or does not decode makes its modality *missing*
for that row; the row is kept while at least ``preprocess.min_modalities`` of its modalities
are usable (docs/missing.md). The mask travels down the chain as each item's ``missing``
list (written only when non-empty, so a manifest without gaps gives the artifacts it always
gave):

* preprocess stores the kind's ``missing_value`` (:mod:`mmcli.kinds`) for the absent cell
  (so the data arrays keep one row per item) and records the cell in failures.csv with a
  reason starting ``kept:``;
* extract writes :data:`FEATURE_FILL` for the absent cell's feature row (extractors never
  see it, neither when fitting nor when transforming);
* fuse replaces the absent block by the block's train mean over present rows (its
  normalisation maps it to zero; a token block gets padding) and, when train had a missing
  cell, appends one 0/1 missing indicator per block (:data:`INDICATOR_KEY`);
* models that combine blocks themselves (``late_decision``, the learned fusions) receive the
  mask as ``presence`` (see :func:`predict_proba`).

The per-kind stand-ins are the kinds' own (``Kind.missing_value`` in :mod:`mmcli.kinds`).
"""

from __future__ import annotations

import numpy as np

#: preprocess.missing per column: keep (the modality may be absent) or drop (leave the row out)
MISSING_POLICIES = ("keep", "drop")
#: reasons of failures.csv rows that name a cell whose row was kept without it
KEPT_PREFIX = "kept: "
#: what extract writes for the feature row of an absent cell
FEATURE_FILL = 0.0
#: fusion.json key describing the missing-indicator columns appended to fused.npy
INDICATOR_KEY = "missing_indicators"


def missing_of(item: dict) -> list[str]:
    """The modality columns absent in ``item`` (an items.jsonl record)."""
    return list(item.get("missing") or ())


def presence(items: list[dict], columns: list[str]) -> np.ndarray:
    """(n_items, n_columns) bool: True where the item's modality is present."""
    out = np.ones((len(items), len(columns)), dtype=bool)
    for n, it in enumerate(items):
        for col in missing_of(it):
            if col in columns:
                out[n, columns.index(col)] = False
    return out


def pattern_name(missing: list[str] | tuple) -> str:
    """A missingness pattern as the report names it: "all present" or "text absent"."""
    return "all present" if not missing else f"{' + '.join(missing)} absent"


def predict_proba(model, X: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """``model.predict_proba(X)``, with the presence mask for models that use it
    (``uses_presence``: late_decision and the learned fusions)."""
    if mask is not None and getattr(model, "uses_presence", False):
        return model.predict_proba(X, presence=mask)
    return model.predict_proba(X)


def fit_presence(model, items: list[dict], fused_path, train: list[int],
                 val: list[int]) -> dict:
    """The ``presence`` and ``presence_val`` keywords of ``model.fit`` for a model that uses
    them when a train or val item of the fuse directory ``fused_path`` lacks a modality; {}
    otherwise (the fit is as before)."""
    import json
    from pathlib import Path

    if not getattr(model, "uses_presence", False):
        return {}
    fusion = json.loads((Path(fused_path) / "fusion.json").read_text(encoding="utf-8"))
    mask = presence(items, fusion["modalities"])
    if mask[train].all() and mask[val].all():
        return {}
    return {"presence": mask[train], "presence_val": mask[val] if len(val) else None}


def block_presence(X: np.ndarray, blocks, mask: np.ndarray | None) -> np.ndarray:
    """(n, n_blocks) bool presence for a model that combines ``blocks`` (a
    :class:`mmcli.blocks.Blocks` or ``[(start, stop)]``) itself: ``mask`` when
    given, else read from the fusion's missing indicators when ``X`` ends with them (model
    selection passes no mask), else all present."""
    from mmcli.blocks import as_blocks

    if mask is not None:
        return np.asarray(mask, dtype=bool)
    blocks = as_blocks(blocks)
    end, m = blocks.width, len(blocks)
    if X.shape[1] == end + m:
        return np.asarray(X[:, end:]) < 0.5
    return np.ones((len(X), m), dtype=bool)
