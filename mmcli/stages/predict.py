"""predict: apply a trained model directory to a new manifest (labels not needed).

The model directory holds every fitted transformer, so this runs preprocess, extract and fuse
exactly as fitted during training, then the model.

Output directory::

    meta.json
    predictions.csv     id, prediction, prob_<class>... per usable item (a row with at least
                        preprocess.min_modalities usable modalities), in manifest order,
                        prediction_<task> per extra task of a multi-task model, and
                        ``missing`` (the absent modalities, joined by "|") when a row lacks one
    predictions.parquet the same columns (probabilities as float64), with format parquet
    failures.csv        row, id, column, reason for every item left out, and every missing
                        cell of a predicted item (reason "kept: ...")
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np

from mmcli import artifacts, storage
from mmcli.config import PredictConfig, to_dict
from mmcli.errors import UsageError
from mmcli.fitted import FittedChain
from mmcli.manifest import read_manifest
from mmcli.missing import missing_of, presence
from mmcli.parallel import connect, runtime_of
from mmcli.progress import ProgressFactory, silent
from mmcli.stages.extract import transform as extract_transform
from mmcli.stages.preprocess import apply as preprocess_apply
from mmcli.stages.preprocess import manifest_inputs, resolve_media_roots

CHUNK = 4096
PREDICTION_FORMATS = ("csv", "parquet")


@storage.staged("model_dir")
def predict(model_dir: Path, manifest_path: Path, out: Path,
            config: PredictConfig | None = None, progress: ProgressFactory = silent) -> dict:
    """Predict every row of ``manifest_path``; returns a summary."""
    config = config or PredictConfig()
    _check_config(config)
    chain = FittedChain.load(model_dir, "mmcli predict")
    manifest = read_manifest(manifest_path)
    ids = manifest.ids()
    with artifacts.StageWriter(out, "predict", (chain.path,)) as writer:
        work = writer.path / "work"
        summary = preprocess_apply(manifest, ids, None, ["predict"] * len(ids), chain.pstate,
                                   work, runtime_of(config), config.max_failed_fraction,
                                   progress, media_roots=config.media_roots)
        extract_transform(work, chain.pstate, chain.plan, work / "features", runtime_of(config),
                          progress)
        items = artifacts.read_jsonl(work / "items.jsonl")
        proba, tasks = _predict_features(chain, work / "features", items)
        predicted = [chain.classes[int(k)] for k in proba.argmax(1)]
        extra = {f"prediction_{t}": v for t, v in tasks.items()}
        extra.update(missing_column(items))
        _write_csv(writer.path / "predictions.csv", items, predicted, chain.classes, proba, extra)
        if config.format == "parquet":
            _write_parquet(writer.path / "predictions.parquet", items, predicted, chain.classes,
                           proba, extra)
        shutil.move(str(work / "failures.csv"), writer.path / "failures.csv")
        shutil.rmtree(work)
        summary = {"rows": summary["rows"], "predicted": summary["kept"],
                   "failed": summary["failed"],
                   **({"missing_cells": summary["missing_cells"]}
                      if "missing_cells" in summary else {}),
                   "accuracy": _accuracy(manifest, ids, items, predicted,
                                         config.label or chain.pstate.label)}
        writer.commit(to_dict(config), None,
                      {str(chain.path): chain.stage.meta_hash(),
                       **manifest_inputs(manifest, chain.pstate.columns)}, summary)
    return summary


def _check_config(config: PredictConfig) -> None:
    """Refuse a bad format, a missing parquet library, an unknown executor or unreachable
    scheduler and a missing media root now, before any work."""
    if config.format not in PREDICTION_FORMATS:
        raise UsageError(f"predict format {config.format!r} is not one of "
                         f"{', '.join(PREDICTION_FORMATS)}", "pass --format csv or parquet")
    if config.format == "parquet":
        from mmcli.manifest import require_pyarrow

        require_pyarrow()  # not installed: fails now, not after the work
    connect(runtime_of(config))  # an unknown executor or scheduler fails now
    resolve_media_roots(config.media_roots)


def _predict_features(chain: FittedChain, features: Path, items: list[dict]
                      ) -> tuple[np.ndarray, dict[str, list]]:
    """Class probabilities and extra-task predictions of the ``items`` whose feature blocks
    are in ``features``, fused and scored ``CHUNK`` rows at a time with their presence mask
    (mmcli.missing)."""
    blocks = [artifacts.load_npy(features / f"{c}.npy") for c in chain.columns]
    mask, n = presence(items, chain.columns), len(items)
    parts, tasks = [], {}
    for a in range(0, n, CHUNK):
        fused = chain.fuse([b[a:a + CHUNK] for b in blocks], mask[a:a + CHUNK])
        parts.append(chain.predict_proba(fused, mask[a:a + CHUNK]))
        for name, values in chain.task_predictions(fused).items():
            tasks.setdefault(name, []).extend(values)
    return (np.vstack(parts) if n else np.zeros((0, len(chain.classes)))), tasks




def _write_csv(path: Path, items: list[dict], predicted: list[str], classes: list[str],
               proba: np.ndarray, extra: dict[str, list]) -> None:
    """predictions.csv; ``extra``: the columns after the probabilities."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        out_csv = csv.writer(f, lineterminator="\n")
        out_csv.writerow(["id", "prediction", *(f"prob_{c}" for c in classes), *extra])
        for k, (it, label, row) in enumerate(zip(items, predicted, proba)):
            out_csv.writerow([it["id"], label, *(f"{v:.6f}" for v in row),
                              *(v[k] for v in extra.values())])


def missing_column(items: list[dict]) -> dict[str, list[str]]:
    """{"missing": per item, its absent modalities joined by "|" ("" when complete)}, or {}
    when no item lacks one (the column is then left out, as files were before it existed)."""
    values = ["|".join(missing_of(it)) for it in items]
    return {"missing": values} if any(values) else {}


def _write_parquet(path: Path, items: list[dict], predicted: list[str], classes: list[str],
                   proba: np.ndarray, extra: dict[str, list]) -> None:
    """predictions.parquet: the columns of predictions.csv, probabilities as float64;
    ``extra``: the columns after the probabilities (prediction_<task>, missing)."""
    from mmcli.manifest import require_pyarrow

    pa = require_pyarrow()
    table = pa.table({"id": pa.array([it["id"] for it in items], pa.string()),
                      "prediction": pa.array(predicted, pa.string()),
                      **{f"prob_{c}": pa.array(proba[:, k].astype(np.float64), pa.float64())
                         for k, c in enumerate(classes)},
                      **{name: pa.array(v) for name, v in extra.items()}})
    pa.parquet.write_table(table, path, compression="zstd")


def _accuracy(manifest, ids, items, predicted, label: str | None) -> dict | None:
    """Accuracy on the rows whose label is known, when the manifest has the label column."""
    if not label or label not in manifest.columns:
        return None
    truth = dict(zip(ids, manifest.stripped(label)))
    pairs = [(truth[it["id"]], p) for it, p in zip(items, predicted) if truth[it["id"]]]
    if not pairs:
        return None
    return {"label": label, "n": len(pairs),
            "accuracy": sum(t == p for t, p in pairs) / len(pairs)}
