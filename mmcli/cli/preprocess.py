from __future__ import annotations

from typing import Annotated

import typer

from mmcli.cli import console, options
from mmcli.cli.errors import handle_errors


@handle_errors
def command(
    manifest: Annotated[
        str, typer.Argument(metavar="MANIFEST",
                            help="Manifest: CSV (.csv/.tsv) or JSONL; a path or an fsspec URL "
                            "(s3://..., see docs/scaling.md).")
    ],
    out: options.Out,
    config: options.Config = None,
    label: options.Label = None,
    group: Annotated[
        str | None,
        typer.Option("--group", metavar="COL",
                     help="Group column (speaker, session, patient...): no value of it appears "
                     "in two splits; the split hashes the group, not the item (default: "
                     "preprocess.group, none)."),
    ] = None,
    seed: options.Seed = None,
    jobs: options.Jobs = None,
    executor: options.Executor = None,
    scheduler: options.Scheduler = None,
    media_root: options.MediaRoot = None,
    quiet: options.Quiet = False,
) -> None:
    """Validate a manifest, decode and normalise every item, and split it.

    A cell that is empty, names a missing file or does not decode makes that modality
    missing for its row; the row is kept while preprocess.min_modalities (default 1) of its
    modalities are usable (docs/missing.md). Rows left out and missing cells are listed in
    failures.csv; the stage fails when more than preprocess.max_failed_fraction of the rows
    are left out.

    Example:

        mmcli preprocess sample_data/manifest.csv -o runs/demo/pre

    Speakers never shared between train, val and test:

        mmcli preprocess data/manifest.csv -o runs/pre --group speaker

    A manifest from an untrusted source: read media only from inside its folder.

        mmcli preprocess upload/manifest.csv -o runs/pre --media-root upload

    On a Dask cluster, from a bucket (docs/scaling.md):

    \b
        mmcli preprocess s3://bucket/set/manifest.csv -o runs/pre \\
            --executor dask --scheduler tcp://sched:8786
    """
    from mmcli.config import PreprocessConfig, build, read_config_file
    from mmcli.stages.preprocess import preprocess

    console.set_quiet(quiet)
    cfg = build(PreprocessConfig, read_config_file(config), "preprocess",
                {"label": label, "group": group, "seed": seed, "jobs": jobs,
                 "executor": executor, "scheduler": scheduler,
                 "media_roots": [str(p) for p in media_root] if media_root else None})
    s = preprocess(manifest, out, cfg, console.progress)
    print_summary(s, out, cfg.group)


def print_missing(s: dict, out) -> None:
    """The missing cells of kept rows, per modality (none: nothing printed)."""
    if s.get("missing_cells"):
        cells = ", ".join(f"{c} {n}" for c, n in s["missing_cells"].items())
        console.info(f"missing modalities in kept items: {cells} (see {out}/failures.csv)")


def print_summary(s: dict, out, group: str | None) -> None:
    """What preprocess prints (stderr): items kept per split, modalities and classes, groups,
    labels train lacks, incremental reuse; then the exit status for left-out items."""
    splits = ", ".join(f"{k} {v}" for k, v in s["splits"].items())
    kinds = ", ".join(f"{c} ({k})" for c, k in s["columns"].items())
    console.info(f"preprocess: {s['kept']} of {s['rows']} items kept ({splits}); "
                 f"{s['failed']} left out (see {out}/failures.csv)")
    print_missing(s, out)
    console.info(f"modalities: {kinds}; classes: {', '.join(s['classes'])}")
    if "groups" in s:
        counts = ", ".join(f"{k} {v}" for k, v in s["groups"].items())
        console.info(f"groups ({group}): {counts}")
    for name, n in s.get("unseen_labels", {}).items():
        console.info(f"note: label {name!r} ({n} item{'s' if n > 1 else ''}) is not in the "
                     "train split; the model cannot predict it")
    if s["reused"] or s["resumed_chunks"]:
        console.info(f"incremental: decoded {s['decoded']} items, reused {s['reused']} from "
                     f"the previous output, {s['resumed_chunks']} chunks resumed")
    console.info(f"wrote {out}")
    console.finish(s["failed"])
