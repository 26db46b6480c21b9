"""The context report.html renders (see :mod:`mmcli.report.html`): everything but the
figures, from eval's scored models (:class:`mmcli.stages.evaluate.ScoredModel`)."""

from __future__ import annotations

import csv

from mmcli import artifacts
from mmcli.config import to_dict
from mmcli.report.figures import focus_split
from mmcli.report.markdown import trained_model


def report_context(runs: list, config) -> dict:
    """Everything report.html shows besides the figures; ``config`` is the EvalConfig."""
    main = runs[0]
    fusion = artifacts.read_json(main.fused.path / "fusion.json")
    upstream = main.upstream
    return {
        "name": main.name,
        "model_path": str(main.model.path),
        "fused_path": str(main.fused.path),
        "headline": {"model": trained_model(main.model.meta),
                     "fusion": fusion["method"], "modalities": fusion["modalities"]},
        "metrics": main.metrics,
        "focus": focus_split(main.metrics),
        "robustness": main.robustness,
        "data": _data_summary(main),
        "configs": {
            "preprocess": upstream.preprocess.meta["config"] if upstream.preprocess else None,
            "extract": upstream.extract.meta["config"] if upstream.extract else None,
            "fuse": main.fused.meta["config"],
            "train": main.model.meta["config"],
            "eval": to_dict(config),
        },
        "versions": _versions(),
        "compare": _comparison(runs) if len(runs) > 1 else [],
        "selection": main.model.meta.get("summary", {}).get("selection"),
    }


def _data_summary(main) -> dict:
    """Items per split and class, and the failures preprocess recorded."""
    counts: dict[str, dict[str, int]] = {}
    for split in ("train", "val", "test"):
        labels = [it["label"] for it in main.items if it["split"] == split]
        if labels:
            counts[split] = {c: labels.count(c) for c in sorted(set(labels))}
    failures, failures_path = None, None
    if main.upstream.preprocess is not None:
        failures_path = main.upstream.preprocess.path / "failures.csv"
        with open(failures_path, encoding="utf-8", newline="") as f:
            failures = list(csv.DictReader(f))
    return {"counts": counts, "failures": failures,
            "failures_path": str(failures_path) if failures_path else None,
            "notes": main.upstream.notes}


def _versions() -> dict[str, str]:
    from importlib import metadata

    versions = artifacts.library_versions()
    try:
        versions["matplotlib"] = metadata.version("matplotlib")
    except metadata.PackageNotFoundError:  # pragma: no cover - a dependency
        versions["matplotlib"] = "not installed"
    return versions


def _comparison(runs: list) -> list[dict]:
    out = []
    for r in runs:
        rfusion = artifacts.read_json(r.fused.path / "fusion.json")
        out.append({
            "name": r.name, "model_path": str(r.model.path), "fused_path": str(r.fused.path),
            "model": trained_model(r.model.meta), "fusion": rfusion["method"],
            "test": {k: v for k, v in r.metrics["test"].items() if k != "robustness"}
            if "test" in r.metrics else None,
            "robustness": r.robustness})
    return out
