from __future__ import annotations

from typing import Annotated

import typer

from mmcli.cli import console, options
from mmcli.cli.errors import handle_errors


@handle_errors
def command(
    model_dir: Annotated[
        str, typer.Argument(metavar="MODEL_DIR", callback=options.location,
                            help="Directory written by `mmcli train`. A path or an fsspec URL.")
    ],
    manifest: Annotated[
        str, typer.Argument(metavar="MANIFEST",
                            help="New manifest (CSV/JSONL/Parquet; a path or an fsspec URL); no "
                            "label needed.")
    ],
    out: options.Out,
    config: options.Config = None,
    label: options.Label = None,
    jobs: options.Jobs = None,
    executor: options.Executor = None,
    scheduler: options.Scheduler = None,
    media_root: options.MediaRoot = None,
    fmt: Annotated[str | None, typer.Option(
        "--format", metavar="csv|parquet",
        help="parquet: also write predictions.parquet (needs pyarrow: mmcli[parquet]).")] = None,
    quiet: options.Quiet = False,
) -> None:
    """Predict new items with a trained model directory.

    Writes predictions.csv (id, prediction, prob_<class>..., and missing when a row lacks a
    modality) and failures.csv. Every row with a usable modality is predicted (docs/missing.md).
    When the manifest has the label column (--label, default the model's), accuracy on it is
    reported.

    Example:

        mmcli predict runs/demo/model sample_data/unlabeled.csv -o runs/demo/pred

    A manifest from an untrusted source: read media only from inside its folder.

        mmcli predict runs/demo/model upload/manifest.csv -o runs/pred --media-root upload
    """
    from mmcli.cli.preprocess import print_missing
    from mmcli.config import PredictConfig, build, read_config_file
    from mmcli.stages.predict import predict

    console.set_quiet(quiet)
    cfg = build(PredictConfig, read_config_file(config), "predict",
                {"label": label, "jobs": jobs,
                 "executor": executor, "scheduler": scheduler,
                 "media_roots": [str(p) for p in media_root] if media_root else None,
                 "format": fmt})
    s = predict(model_dir, manifest, out, cfg, console.progress)
    console.info(f"predict: {s['predicted']} of {s['rows']} items predicted, "
                 f"{s['failed']} left out (see {out}/failures.csv)")
    print_missing(s, out)
    if s["accuracy"]:
        a = s["accuracy"]
        console.info(f"accuracy on the {a['n']} rows with a {a['label']!r} value: "
                     f"{a['accuracy']:.3f}")
    also = " and predictions.parquet" if cfg.format == "parquet" else ""
    console.info(f"wrote {out}/predictions.csv{also}")
    console.finish(s["failed"])
