from __future__ import annotations

from typing import Annotated

import typer

from mmcli.cli import console, options
from mmcli.cli.errors import handle_errors


def _list(value: bool) -> None:
    if value:
        from mmcli.extractors.catalog import format_list

        print(format_list())
        raise typer.Exit()


@handle_errors
def _show_config(name: str | None) -> None:
    if name:
        from mmcli.extractors.catalog import default_config_yaml

        print(default_config_yaml(name), end="")
        raise typer.Exit()


Device = Annotated[str | None, typer.Option(
    "--device", help="auto (a GPU when present), cpu or cuda, for the extractors that run a "
    "model (cnn, hf_*, sentence_transformers, clip_*, timm) left at device auto (default: "
    "auto).")]


@handle_errors
def command(
    pre_dir: Annotated[
        str, typer.Argument(metavar="PRE_DIR", callback=options.location,
                            help="Directory written by `mmcli preprocess` (a path or URL).")
    ],
    out: options.Out,
    list_: Annotated[bool | None, typer.Option(
        "--list", callback=_list, is_eager=True,
        help="List every extractor (kind, output dimension, parameters) and exit.")] = None,
    show_config: Annotated[str | None, typer.Option(
        "--show-config", metavar="NAME", callback=_show_config, is_eager=True,
        help="Print an extractor's default parameters as config YAML and exit.")] = None,
    device: Device = None,
    config: options.Config = None,
    label: options.Label = None,
    seed: options.Seed = None,
    jobs: options.Jobs = None,
    executor: options.Executor = None,
    scheduler: options.Scheduler = None,
    quiet: options.Quiet = False,
) -> None:
    """Compute per-modality features, fitted on the train split only.

    Defaults: images color_hist + hog; audio whole-clip statistics (mfcc, spectral, prosody)
    plus log-mel frames where train clips are short and of similar length (frames(auto)); text
    tfidf over words and, on short texts, character n-grams (+ SVD); numeric values;
    categorical one-hot. Choose others in the config's extract section.
    --list shows every extractor; docs/extractors.md has the details and measurements.

    Example:

        mmcli extract runs/demo/pre -o runs/demo/feat

        mmcli extract --show-config hog > hog.yaml

        mmcli extract runs/demo/pre -o runs/demo/feat -c bert.yaml --device cpu

    On a local Dask cluster of 8 worker processes (docs/scaling.md):

        mmcli extract runs/demo/pre -o runs/demo/feat --executor dask -j 8
    """
    from mmcli.config import ExtractConfig, build, read_config_file
    from mmcli.stages.extract import extract

    console.set_quiet(quiet)
    cfg = build(ExtractConfig, read_config_file(config), "extract",
                {"label": label, "seed": seed, "jobs": jobs, "device": device,
                 "executor": executor, "scheduler": scheduler})
    s = extract(pre_dir, out, cfg, console.progress)
    dims = ", ".join(f"{c} {d}" for c, d in s["blocks"].items())
    console.info(f"extract: {s['items']} items; feature dimensions: {dims}")
    for column, notes in s.get("notes", {}).items():
        for note in notes:
            console.info(f"  {column}: {note}")
    if s["reused"] or s["resumed_chunks"] or not s["refit"]:
        console.info(f"incremental: {_fit_note(s)}; computed {s['computed']} item features, reused "
                     f"{s['reused']}, {s['resumed_chunks']} chunks resumed")
    console.info(f"wrote {out}")


def _fit_note(s: dict) -> str:
    """How the extractors got their fitted state, for the ``incremental:`` line."""
    if not s["refit"]:
        return "fitted state reused (train split unchanged)"
    return "fitted state of the interrupted run loaded" if s.get("fit_resumed") else "refitted"
