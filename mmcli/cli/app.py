"""The mmcli command line: commands registered explicitly, in pipeline order."""

from __future__ import annotations

from typing import Annotated

import typer

from mmcli import __version__
from mmcli.cli import evaluate, extract, fuse, predict, preprocess, run, train

app = typer.Typer(
    name="mmcli",
    help="Batch multimodal machine learning: preprocess -> extract -> fuse -> train -> eval, "
    "and predict on new data. Every stage reads and writes a directory.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"mmcli {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool | None, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")] = None,
) -> None:
    pass


app.command("preprocess")(preprocess.command)
app.command("extract")(extract.command)
app.command("fuse")(fuse.command)
app.command("train")(train.command)
app.command("eval")(evaluate.command)
app.command("predict")(predict.command)
app.command("run")(run.command)


def main() -> None:
    app()
