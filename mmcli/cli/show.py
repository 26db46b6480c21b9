from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mmcli.cli import console
from mmcli.cli.errors import handle_errors


@handle_errors
def command(
    target: Annotated[Path, typer.Argument(
        metavar="DIR|PIPELINE", help="A stage directory, or a pipeline YAML file (every stage).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (for scripts).")
                       ] = False,
) -> None:
    """Describe a stage directory: its stage, mmcli version and schema, resolved config,
    lineage back to the manifest, sizes and row counts, whether every file is intact and
    whether it is up to date with its inputs (the check `mmcli run` makes). On a pipeline
    file: the status of every stage, like `mmcli run --dry-run`. Exits 4 when DIR is no stage
    directory or a file in it was modified; a stale directory is not an error.

    Example:

        mmcli show runs/pipeline/model

        mmcli show configs/pipeline.yaml --json
    """
    import json

    from mmcli.errors import ArtifactError
    from mmcli.stages.show import describe, describe_pipeline, render, render_pipeline

    if target.suffix in (".yaml", ".yml") and not target.is_dir():
        info = describe_pipeline(target)
        console.result(json.dumps(info, indent=2, sort_keys=True) if as_json
                       else render_pipeline(info))
        return
    info = describe(target)
    console.result(json.dumps(info, indent=2, sort_keys=True) if as_json else render(info))
    if not info["intact"]:
        raise ArtifactError(f"{target} is not intact: {info['problem']}",
                            f"re-run `{info['stage']}` to remake it")
