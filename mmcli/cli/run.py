from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mmcli.cli import console, options
from mmcli.cli.errors import handle_errors


@handle_errors
def command(
    pipeline: Annotated[
        Path, typer.Argument(metavar="PIPELINE", help="Pipeline YAML file (see configs/).")
    ],
    force: Annotated[bool, typer.Option("--force", help="Run every stage.")] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print what would run and why; run nothing.")] = False,
    track: options.Track = None,
    quiet: options.Quiet = False,
) -> None:
    """Run the whole chain from one pipeline file, skipping up-to-date stages.

    A stage re-runs when its inputs, its config or the mmcli version changed, or its output
    is missing or was modified.

    Example:

        mmcli run configs/pipeline.yaml --dry-run
    """
    from mmcli.stages.run import run_pipeline

    console.set_quiet(quiet)

    def show(r) -> None:
        took = f" in {r.seconds:.1f}s" if r.action == "ran" else ""
        console.info(f"{r.stage:<10} {r.action}{took} ({r.reason}) -> {r.out}")

    from mmcli.tracking import Tracker

    # one MLflow run for the whole pipeline; a dry run computes nothing worth tracking
    with Tracker(f"mmcli run {pipeline}", "run", False if dry_run else track) as tracker:
        def stage_done(r) -> None:
            show(r)
            tracker.log_stage(r.out, r.action)

        reports = run_pipeline(pipeline, force=force, dry_run=dry_run,
                               progress=console.progress, on_stage=stage_done)
    ran = sum(r.action == "ran" for r in reports)
    verb = "would run" if dry_run else "ran"
    count = sum(r.action == "would run" for r in reports) if dry_run else ran
    console.info(f"run: {verb} {count} of {len(reports)} stages")
